// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * memprof-bpf: trace a process's allocations from outside and keep the
 * breakdown of live bytes at its peak. main() is the list of phases;
 * each stage lives in its own file (see README, "Architecture"), and they
 * meet in one event loop (lib/loop.c) that each registers with.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "agent.h"
#include "view/batch.h"
#include "offline/diff.h"
#include "names/names.h"
#include "recorder/kernelspec.h"
#include "model/events.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "memprof.h"
#include "memprof.skel.h"
#include "options.h"
#include "output/publish.h"
#include "server/query.h"
#include "procs/census_job.h"
#include "recorder/recording.h"
#include "procs/reaper.h"
#include "offline/report.h"
#include "procs/session.h"
#include "view/topview.h"

/* 100 ms: records come without wakeups (bpf/common.bpf.h, submit). */
#define TICK_NS 100000000ULL
/* The recorder's ring fills faster than the probes' (no trap slows it). */
#define RECORDER_NS 10000000ULL

/* What main's phases and the loop's callbacks share. */
struct run {
	struct agent *a;
	struct loop *loop;
	uint64_t interval_ns; /* --interval */
	uint64_t last_interval; /* when its report was last made */
	int stop_signal; /* the SIGINT or SIGTERM that ended it, or 0 */
};

/* SIGINT, SIGTERM: end the run; the final snapshots say "signal". */
static void on_stop_signal(struct loop *l, int sig, void *data)
{
	struct run *r = data;

	r->stop_signal = sig;
	loop__stop(l);
}

/* Consume what the ring holds; a failing ring ends the run. */
static void drain(struct run *r)
{
	int err;

	r->a->now_ns = now_monotonic_ns();
	err = ring_buffer__consume(r->a->rb);
	if (err < 0 && err != -EINTR) {
		log_err("ring buffer: %s", strerror(-err));
		loop__stop(r->loop);
	}
	recording__drain(r->a); /* the in-process recorder's, after */
}

/* SIGUSR1: every traced process's snapshot now, what is queued counted. */
static void on_usr1(struct loop *l, int sig, void *data)
{
	struct run *r = data;

	(void)l;
	(void)sig;
	drain(r);
	session__snapshot_all(r->a, "manual");
}

/*
 * The loop, and the signals it reads: before any thread starts, since
 * threads inherit the blocked mask the loop's signalfd relies on.
 */
static int setup_loop(struct run *r)
{
	int err;

	signal(SIGPIPE, SIG_IGN);
	r->loop = loop__new();
	err = r->loop ? 0 : -errno;
	if (!err)
		err = loop__add_signal(r->loop, SIGINT, on_stop_signal, r);
	if (!err)
		err = loop__add_signal(r->loop, SIGTERM, on_stop_signal, r);
	if (!err)
		err = loop__add_signal(r->loop, SIGUSR1, on_usr1, r);
	if (err)
		log_err("cannot set up the event loop: %s", strerror(-err));
	return err ? 2 : 0;
}

/* libbpf's own messages at -v, its debug (the verifier's log) at -vv. */
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
		recording__drain(a);
		if (!a->primary_done)
			session__on_exit(a, a->primary, a->primary_status);
	}
}

/* The run ends with the session: nothing left to trace or wait for. */
static void stop_when_done(struct run *r)
{
	if (!session__active(r->a))
		loop__stop(r->loop);
}

/* The ring passed wakeup_bytes, or an urgent record came: read it now. */
static void on_ring(struct loop *l, int fd, unsigned events, void *data)
{
	(void)l;
	(void)fd;
	(void)events;
	drain(data);
	stop_when_done(data);
}

/* Every --interval: the view's or the batch report, the published state. */
static void report_interval(struct run *r)
{
	struct agent *a = r->a;
	double elapsed = (a->now_ns - r->last_interval) / 1e9;

	if (a->view)
		topview__interval(a->view, elapsed);
	else
		batch__report(a, a->out, elapsed);
	publish__tick(a);
	r->last_interval = a->now_ns;
}

/*
 * Every TICK_NS: what a quiet ring holds (no wakeup came for it), the
 * session's housekeeping, and the interval's work when it is due.
 */
static void on_tick(struct loop *l, void *data)
{
	struct run *r = data;
	struct agent *a = r->a;
	bool due;

	drain(r);
	if (loop__stopped(l))
		return;
	catch_lost_primary_exit(a);
	due = a->now_ns - r->last_interval >= r->interval_ns;
	session__tick(a, due);
	if (due)
		report_interval(r);
	stop_when_done(r);
}

/*
 * Every RECORDER_NS with --probes recorder: both rings, between ticks (the
 * probes' first: an exec read after the records of its new image would
 * take their blocks away with the old image's).
 */
static void on_recorder(struct loop *l, void *data)
{
	(void)l;
	drain(data);
}

/* --duration is up. */
static void on_duration(struct loop *l, void *data)
{
	(void)data;
	loop__stop(l);
}

/*
 * The ring, the tick and --duration join the loop (the view and the
 * query socket are in it already); it turns until a signal, the view,
 * the time or the end of the session stops it.
 */
static void run(struct run *r)
{
	struct agent *a = r->a;
	uint64_t duration_ns = a->env.duration > 0 ? a->env.duration * 1e9 : 0;
	int err;

	a->now_ns = r->last_interval = now_monotonic_ns();
	r->interval_ns = a->env.interval * 1e9;
	err = loop__add_fd(r->loop, ring_buffer__epoll_fd(a->rb), LOOP_IN,
			   on_ring, r);
	if (!err && loop__add_timer(r->loop, TICK_NS, TICK_NS, on_tick, r) < 0)
		err = -ENOMEM;
	if (!err && a->rec &&
	    loop__add_timer(r->loop, RECORDER_NS, RECORDER_NS, on_recorder, r) <
		    0)
		err = -ENOMEM;
	if (!err && duration_ns &&
	    loop__add_timer(r->loop, duration_ns, 0, on_duration, r) < 0)
		err = -ENOMEM;
	if (!err) {
		stop_when_done(r);
		err = loop__run(r->loop);
	}
	if (err)
		log_err("event loop: %s", strerror(-err));
	ring_buffer__consume(a->rb); /* what is already queued counts */
	recording__drain(a);
	a->now_ns = now_monotonic_ns();
}

/* Final snapshots, then the exit code: errors, else the command's own. */
static int finish(struct run *r)
{
	struct agent *a = r->a;
	const char *reason = r->stop_signal ? "signal" : "end";
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

/* Everything the run needs, in order: the first failure's exit code. */
static int start(struct run *r)
{
	struct agent *a = r->a;
	int err;

	err = setup_loop(r);
	if (!err)
		err = check_environment();
	if (!err)
		err = load_probes(a);
	if (!err && reaper__start())
		log_warn("no detach thread: detaching will pause event intake");
	if (!err)
		err = recording__start(a); /* before the command starts */
	if (!err && census_job__start(a, r->loop))
		log_warn("census: no eventfd: merged at the next tick");
	if (!err)
		err = session__start(a);
	if (!err)
		start_publishing(a);
	if (!err)
		query__start(a, r->loop); /* big_objs() asks here (optional) */
	if (!err && topview__wanted(&a->env)) /* NULL: line output */
		a->view = topview__open(a, r->loop, session__snapshot_all);
	return err;
}

/* Undo start(): the socket leaves the loop before the loop goes. */
static void cleanup(struct run *r)
{
	struct agent *a = r->a;

	query__stop(a);
	census_job__stop(a, r->loop);
	publish__stop(a);
	tracees__free(&a->procs);
	recording__stop(a);
	reaper__stop(); /* links go before the programs they run */
	if (a->finished_ns)
		log_info("probes removed %.2f s after the snapshots",
			 (now_monotonic_ns() - a->finished_ns) / 1e9);
	loop__free(r->loop);
	ring_buffer__free(a->rb);
	memprof_bpf__destroy(a->skel);
}

int main(int argc, char **argv)
{
	struct agent a = { .exit_code = 0, .census_efd = -1 };
	struct run r = { .a = &a };
	int err, code;

	/* Reading saved snapshots needs no root and no BPF. */
	if (argc > 1 && !strcmp(argv[1], "report"))
		return report__main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "diff"))
		return diff__main(argc - 1, argv + 1);
	/* Reading a Python's names from outside needs root, not BPF. */
	if (argc > 1 && !strcmp(argv[1], "names"))
		return names__main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "kernelspec"))
		return kernelspec__main(argc - 1, argv + 1);
	err = options__parse(argc, argv, &a.env);
	if (err)
		return err > 0 ? 0 : 2;
	/* A command's own stdout stays its own. */
	a.out = a.env.command ? stderr : stdout;
	log_verbosity = a.env.verbose;
	err = start(&r);
	if (!err)
		run(&r);
	topview__close(a.view); /* final tables go to the terminal */
	a.view = NULL;
	code = finish(&r); /* whatever was gathered is still written */
	cleanup(&r);
	return err ? err : code;
}
