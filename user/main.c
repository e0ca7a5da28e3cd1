// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * memprof-bpf: trace a process's allocations from outside and keep the
 * breakdown of live bytes at its peak. main() is the list of phases;
 * each stage lives in its own file (see README, "Architecture").
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"
#include "view/batch.h"
#include "offline/diff.h"
#include "model/events.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "memprof.h"
#include "memprof.skel.h"
#include "options.h"
#include "output/publish.h"
#include "server/query.h"
#include "procs/reaper.h"
#include "offline/report.h"
#include "procs/session.h"
#include "view/topview.h"

volatile sig_atomic_t stop_requested;
volatile sig_atomic_t snapshot_requested;
static volatile sig_atomic_t stop_signal;

/* Handlers only set flags; the main loop acts on them. */
static void on_stop(int sig)
{
	stop_signal = sig;
	stop_requested = 1;
}

static void on_usr1(int sig)
{
	(void)sig;
	snapshot_requested = 1;
}

static void setup_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt,
		      va_list args)
{
	if (level == LIBBPF_DEBUG && log_verbosity < 2)
		return 0;
	if (log_verbosity < 1)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* Fail early, in one line, on what would otherwise be a cryptic error. */
static int check_environment(void)
{
	if (geteuid() != 0) {
		log_err("must run as root to load BPF probes (try: sudo "
			"memprof-bpf ...)");
		return 2;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		log_err("this kernel has no BTF (/sys/kernel/btf/vmlinux); "
			"memprof-bpf needs CONFIG_DEBUG_INFO_BTF=y");
		return 2;
	}
	return 0;
}

/* Open, size, load the probes and attach the process lifecycle hooks. */
static int load_probes(struct agent *a)
{
	struct memprof_bpf *s;
	int err;

	libbpf_set_print(libbpf_log);
	s = memprof_bpf__open();
	if (!s) {
		log_err("cannot open BPF object: %s", strerror(errno));
		return 2;
	}
	a->skel = s;
	s->rodata->bare = a->env.bench_floor;
	s->rodata->watch_exec = a->env.ncomms > 0;
	s->rodata->wakeup_bytes = ((__u64)a->env.ringbuf_mb << 20) / 8;
	bpf_map__set_max_entries(s->maps.events, a->env.ringbuf_mb << 20);
	err = memprof_bpf__load(s);
	if (err) {
		log_err("cannot load BPF probes: %s (run with -vv for the "
			"verifier log)",
			strerror(-err));
		return 2;
	}
	if (!(s->links.on_fork = bpf_program__attach(s->progs.on_fork)) ||
	    !(s->links.on_exec = bpf_program__attach(s->progs.on_exec)) ||
	    !(s->links.on_exit = bpf_program__attach(s->progs.on_exit))) {
		log_err("cannot attach process tracepoints: %s",
			strerror(errno));
		return 2;
	}
	/* OOM kills are still caught by their SIGKILL without it. */
	s->links.on_oom = bpf_program__attach(s->progs.on_oom);
	if (!s->links.on_oom)
		log_warn("no oom:mark_victim tracepoint (%s): OOM kills are "
			 "reported by their signal only",
			 strerror(errno));
	a->rb = ring_buffer__new(bpf_map__fd(s->maps.events), events__handle, a,
				 NULL);
	if (!a->rb) {
		log_err("cannot open the ring buffer: %s", strerror(errno));
		return 2;
	}
	return 0;
}

/* The "--" command exited but its exit record was lost: finish it. */
static void catch_lost_primary_exit(struct agent *a)
{
	if (a->primary && !a->primary_done && a->primary_status >= 0 &&
	    waitpid(a->primary, &a->primary_status, WNOHANG) == a->primary) {
		a->primary_reaped = true;
		ring_buffer__consume(a->rb);
		if (!a->primary_done)
			session__on_exit(a, a->primary, a->primary_status);
	}
}

static bool time_is_up(struct agent *a, uint64_t start)
{
	return a->env.duration > 0 &&
	       a->now_ns - start >= (uint64_t)(a->env.duration * 1e9);
}

/* Sleep until the ring buffer fills, big_objs() calls, or ms pass. */
static int wait_for_work(struct agent *a, int ms)
{
	struct pollfd p[2] = {
		{ .fd = ring_buffer__epoll_fd(a->rb), .events = POLLIN },
		{ .fd = query__fd(a), .events = POLLIN }, /* -1: ignored */
	};

	return poll(p, 2, ms) < 0 ? -errno : 0;
}

/* Poll events, report every interval, act on signals, until done. */
static void run(struct agent *a)
{
	FILE *out = a->out;
	uint64_t start = now_monotonic_ns(), last = start;
	uint64_t interval = a->env.interval * 1e9;

	a->now_ns = start;
	while (!stop_requested && session__active(a) && !time_is_up(a, start)) {
		/*
		 * Records are submitted without wakeups (bpf/common.bpf.h):
		 * the wait ends for a filling ring (or a query client), consume
		 * drains it.
		 */
		int err = wait_for_work(a, 100);

		if (err >= 0)
			err = ring_buffer__consume(a->rb);
		if (err < 0 && err != -EINTR) {
			log_err("ring buffer: %s", strerror(-err));
			break;
		}
		a->now_ns = now_monotonic_ns();
		if (snapshot_requested) {
			snapshot_requested = 0;
			session__snapshot_all(a, "manual");
		}
		catch_lost_primary_exit(a);
		session__tick(a, a->now_ns - last >= interval);
		if (a->now_ns - last >= interval) {
			if (a->view)
				topview__interval(a->view,
						  (a->now_ns - last) / 1e9);
			else
				batch__report(a, out, (a->now_ns - last) / 1e9);
			publish__tick(a);
			last = a->now_ns;
		}
		topview__poll(a->view); /* keys; never waits */
		query__poll(a); /* big_objs() asking; never waits */
	}
	ring_buffer__consume(a->rb); /* what is already queued counts */
	a->now_ns = now_monotonic_ns();
}

/* Final snapshots, then the exit code: errors, else the command's own. */
static int finish(struct agent *a)
{
	const char *reason = stop_signal ? "signal" : "end";
	uint64_t start = now_monotonic_ns();

	session__finish(a, reason);
	a->finished_ns = now_monotonic_ns();
	log_info("final snapshots written in %.2f s",
		 (a->finished_ns - start) / 1e9);
	if (a->skel && a->skel->bss->stats.dropped)
		log_warn("%llu events were dropped: the ring buffer was full; "
			 "raise --ringbuf-size",
			 (unsigned long long)a->skel->bss->stats.dropped);
	if (a->skel)
		log_info("probe stats: nested %llu, no call state %llu; "
			 "Python stacks walked %llu, identified %llu, new %llu",
			 (unsigned long long)a->skel->bss->stats.nested,
			 (unsigned long long)a->skel->bss->stats.no_state,
			 (unsigned long long)a->skel->bss->stats.py_walks,
			 (unsigned long long)a->skel->bss->stats.py_identified,
			 (unsigned long long)a->skel->bss->stats.py_new_stacks);
	if (a->write_errors)
		return 1;
	/*
	 * Its exit record can stop the loop before the kernel lets us reap
	 * it: wait for the status (it has exited), or a kill by a signal
	 * (the OOM killer's SIGKILL) would be passed on as 0.
	 */
	if (a->primary && a->primary_done && !a->primary_reaped &&
	    waitpid(a->primary, &a->primary_status, 0) == a->primary)
		a->primary_reaped = true;
	if (a->primary && WIFEXITED(a->primary_status))
		return WEXITSTATUS(a->primary_status);
	if (a->primary && WIFSIGNALED(a->primary_status))
		return 128 + WTERMSIG(a->primary_status);
	return 0;
}

/* Where notebooks' %memprof finds this agent's figures (optional). */
static void start_publishing(struct agent *a)
{
	const char *dir = getenv("MEMPROF_BPF_STATE_DIR");

	publish__start(a, dir && *dir ? dir : PUBLISH_DIR);
}

static void cleanup(struct agent *a)
{
	query__stop(a);
	publish__stop(a);
	tracees__free(&a->procs);
	reaper__stop(); /* links go before the programs they run */
	if (a->finished_ns)
		log_info("probes removed %.2f s after the snapshots",
			 (now_monotonic_ns() - a->finished_ns) / 1e9);
	ring_buffer__free(a->rb);
	memprof_bpf__destroy(a->skel);
}

int main(int argc, char **argv)
{
	struct agent a = { .exit_code = 0 };
	int err;

	/* Reading saved snapshots needs no root and no BPF. */
	if (argc > 1 && !strcmp(argv[1], "report"))
		return report__main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "diff"))
		return diff__main(argc - 1, argv + 1);
	err = options__parse(argc, argv, &a.env);
	if (err)
		return err > 0 ? 0 : 2;
	/* A command's own stdout stays its own. */
	a.out = a.env.command ? stderr : stdout;
	log_verbosity = a.env.verbose;
	setup_signals();
	err = check_environment();
	if (!err)
		err = load_probes(&a);
	if (!err && reaper__start())
		log_warn("no detach thread: detaching will pause event intake");
	if (!err)
		err = session__start(&a);
	if (!err)
		start_publishing(&a);
	if (!err)
		query__start(&a); /* big_objs() asks here (optional) */
	if (!err && topview__wanted(&a.env))
		a.view = topview__open(&a); /* NULL: line output */
	if (!err) {
		run(&a);
		topview__close(a.view); /* final tables go to the terminal */
		a.view = NULL;
		err = finish(&a);
	} else {
		finish(&a); /* whatever was gathered is still written */
	}
	cleanup(&a);
	return err;
}
