// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "attach.h"
#include "census_job.h"
#include "view/batch.h"
#include "model/events.h"
#include "output/export.h"
#include "launch.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/text.h"
#include "memprof.h"
#include "memprof.skel.h"
#include "procs.h"
#include "output/publish.h"
#include "recorder/recording.h"
#include "session.h"
#include "output/snapshot.h"

#define ATTACH_RETRIES 100 /* ticks of 100 ms waiting for libc to map */
#define CONFLICT_EVERY 10 /* ticks between tries while a tracer holds */
#define CHILD_FILE_BYTES (1 << 20) /* a forked child's peak worth a file */

/* ---- adding processes ------------------------------------------------ */

static bool is_self(const struct agent *a, pid_t pid)
{
	int i;

	for (i = 0; i < a->nself; i++)
		if (a->self[i] == pid)
			return true;
	return false;
}

static const char *attach_reason(const struct tracee *t, int err)
{
	return t->attach_error[0] ? t->attach_error : strerror(-err);
}

/*
 * Is there memory the probes did not see? Yes for a process found
 * running, and after an exec into another allocator (another root's
 * libc, `-- sh -c 'exec chroot ROOT python3.14'`): its probes went in
 * after the new image had started. No for a command launched or a child
 * forked: seen from the start (launchers such as chroot followed to the
 * program's entry, start_command), or from its parent's blocks.
 */
static bool census_wanted(const struct tracee *t)
{
	if (t->census.state != CENSUS_NONE)
		return false;
	if (t->recorder) /* its image seen from the start, or adopted late */
		return t->recorder_late;
	return !(t->primary || t->forked) || t->replanned;
}

/* Attach now; "pending" keeps it for a retry on the next tick. */
static int try_attach(struct agent *a, struct tracee *t)
{
	int err = attach__tracee(a, t);

	if (!err) {
		t->attach = ATTACH_DONE;
		t->attach_error[0] = '\0';
		if (!t->python)
			attach__python(a, t);
		log_info("tracing pid %d (%s), allocator in %s", t->pid,
			 t->comm, t->alloc_lib);
		if (census_wanted(t))
			census_job__request(a, t);
	} else if (err == -EAGAIN && ++t->attach_tries < ATTACH_RETRIES) {
		t->attach = ATTACH_PENDING;
	} else if (err == -EINVAL && a->env.ncomms) {
		/*
		 * Another tracer's probe is in the way (attach.c: explain):
		 * watching for kernels, wait for it to go, saying so once.
		 */
		if (t->attach != ATTACH_BLOCKED)
			log_warn("pid %d (%s): %s; trying again every second "
				 "until it is free",
				 t->pid, t->comm, attach_reason(t, err));
		t->attach = ATTACH_BLOCKED;
		t->attach_tries = 0;
	} else {
		t->attach = ATTACH_FAILED;
	}
	return err;
}

/*
 * Remember the memory cgroup while the process surely exists: the kernel
 * names an OOM victim's cgroup in its record, but a lost record leaves
 * this copy, and its OOM kill count is what the exit signal is judged by.
 * Read again at exec (a launcher joins a cgroup, then execs).
 */
static void note_cgroup(struct tracee *t)
{
	struct memcg m;

	if (procs__memory_cgroup(t->pid, &m))
		return;
	t->memcg = m;
	t->oom_limit = procs__memcg_limit(&m);
	t->oom_kills = procs__memcg_oom_kills(&m);
}

/* Track pid: mark it in BPF first, so no event of it is filtered out. */
static struct tracee *track(struct agent *a, pid_t pid, bool primary)
{
	struct tracee *t = tracees__find(&a->procs, pid);

	if (t)
		return t;
	t = tracee__new(pid, primary);
	if (!t || tracees__add(&a->procs, t)) {
		tracee__delete(t);
		return NULL;
	}
	t->started_ns = a->now_ns;
	timeline__init(&t->timeline, a->now_ns);
	t->oom_limit = t->oom_kills = -1;
	note_cgroup(t);
	if (attach__mark(a, pid))
		log_warn("cannot mark pid %d traced: %s", pid, strerror(errno));
	return t;
}

static void untrack(struct agent *a, struct tracee *t)
{
	publish__forget(a, t->pid);
	attach__forget_python(a, t);
	attach__unmark(a, t->pid);
	tracees__remove(&a->procs, t->pid);
}

static int add_pid(struct agent *a, pid_t pid)
{
	struct tracee *t;
	int err;

	if (!procs__alive(pid)) {
		log_err("no such process: %d", pid);
		return 2;
	}
	t = track(a, pid, false);
	if (!t)
		return 2;
	/* A running process has loaded its libraries: no retry. */
	err = try_attach(a, t);
	if (err) {
		if (err == -EAGAIN)
			log_err("no allocator in pid %d (%s): no libc mapped "
				"and no malloc symbol (stripped static "
				"binary?)",
				pid, t->comm);
		else
			log_err("cannot attach to pid %d (%s): %s", pid,
				t->comm, attach_reason(t, err));
		untrack(a, t);
		return 2;
	}
	return 0;
}

/* --comm: does this process match any name (and is not us)? */
static bool wanted(struct agent *a, pid_t pid)
{
	char comm[16] = "", cmd[4096];
	ssize_t n;
	int i;

	if (is_self(a, pid) || tracees__find(&a->procs, pid))
		return false;
	procs__read_comm(pid, comm, sizeof(comm));
	n = procs__read_cmdline(pid, cmd, sizeof(cmd));
	if (n <= 0)
		return false; /* kernel thread or gone */
	if (strstr(cmd, "memprof-bpf"))
		return false; /* our own sudo/wrapper */
	for (i = 0; i < a->env.ncomms; i++)
		if (procs__match(a->env.comms[i], comm, cmd, n))
			return true;
	return false;
}

static int scan_one(pid_t pid, void *ctx)
{
	struct agent *a = ctx;
	struct tracee *t;

	if (!wanted(a, pid))
		return 0;
	t = track(a, pid, false);
	if (t && try_attach(a, t) && t->attach == ATTACH_FAILED)
		log_warn("cannot attach to pid %d (%s): %s", t->pid, t->comm,
			 attach_reason(t, -EINVAL));
	return 0;
}

/*
 * A launcher exited without starting a program (env /nonexistent): say
 * so once; its exit ends the session as any command's does, and its
 * exit code is the agent's.
 */
static int launcher_exited(struct agent *a, pid_t pid, int status)
{
	if (WIFEXITED(status))
		log_err("'%s' exited with code %d before starting a program: "
			"nothing was traced",
			a->env.command[0], WEXITSTATUS(status));
	else
		log_err("'%s' was killed by signal %d before starting a "
			"program: nothing was traced",
			a->env.command[0], WTERMSIG(status));
	a->primary_status = status;
	a->primary_reaped = true;
	session__on_exit(a, pid, status);
	a->primary_done = true; /* untracked (no memory) or not */
	return 0;
}

/*
 * Follow launchers (env, chroot ...; launch.c) to the program and stop
 * it where the probes go in: its entry point, or where a launcher forked.
 * Their exec records are read now, the program stopped, so the tracee
 * takes its name and mappings (session__on_exec) before it runs.
 * 0, LAUNCH_EXITED (*status), or -errno.
 */
static int to_program(struct agent *a, pid_t pid, int *status)
{
	int end = launch__follow(pid, status);

	if (end == LAUNCH_EXECED || end == LAUNCH_FORKED)
		ring_buffer__consume(a->rb);
	if (end == LAUNCH_PROGRAM || end == LAUNCH_EXECED)
		return launch__to_entry(pid);
	return end == LAUNCH_FORKED ? 0 : end;
}

static int start_command(struct agent *a)
{
	struct tracee *t;
	int err, status;
	pid_t pid;

	recording__before_launch(a); /* --probes recorder: its ring */
	pid = launch__start(a->env.command);
	recording__after_launch(a);
	if (pid < 0)
		return 2;
	a->primary = pid;
	t = track(a, pid, true);
	err = to_program(a, pid, &status);
	if (err == LAUNCH_EXITED)
		return launcher_exited(a, pid, status);
	if (!err && t)
		err = try_attach(a, t);
	if (!err && t && a->env.recorder && !t->recorder)
		log_warn("pid %d (%s): the recorder did not load (a static or "
			 "setuid program, or a root where the library is not "
			 "at "
			 "its path?): its allocations are traced with uprobes",
			 pid, t->comm);
	if (err && err != -EAGAIN) {
		log_err("cannot trace '%s': %s", a->env.command[0],
			t ? attach_reason(t, err) : strerror(-err));
		kill(pid, SIGKILL);
		launch__release(pid);
		return 2;
	}
	return launch__release(pid) ? 2 : 0;
}

/* The agent and its ancestors (sudo, shells) must never match --comm. */
static void note_self(struct agent *a)
{
	pid_t pid = getpid();
	char path[64], buf[512], *p;
	FILE *f;

	while (pid > 1 && a->nself < MAX_SELF) {
		a->self[a->nself++] = pid;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "re");
		if (!f || !fgets(buf, sizeof(buf), f)) {
			if (f)
				fclose(f);
			break;
		}
		fclose(f);
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 2, "%*c %d", &pid) != 1)
			break;
	}
}

int session__start(struct agent *a)
{
	int i, err;

	note_self(a);
	for (i = 0; i < a->env.npids; i++)
		if ((err = add_pid(a, a->env.pids[i])))
			return err;
	if (a->env.ncomms)
		procs__each(scan_one, a);
	if (a->env.command)
		return start_command(a);
	return 0;
}

/* ---- lifecycle events from BPF -------------------------------------- */

void session__on_fork(struct agent *a, pid_t parent, pid_t child)
{
	struct tracee *p = tracees__find(&a->procs, parent), *c;

	if (!p) {
		attach__unmark(a, child);
		return;
	}
	c = tracee__new(child, false);
	if (!c)
		return;
	/* The child starts with its parent's blocks (copy-on-write). */
	heap__free(&c->heap);
	if (heap__clone(&c->heap, &p->heap) || tracees__add(&a->procs, c)) {
		tracee__delete(c);
		return;
	}
	if (tracee__inherit(c, p)) {
		tracees__remove(&a->procs, child);
		return;
	}
	memcpy(c->comm, p->comm, sizeof(c->comm));
	/* Its parent's image until its exec is handled: /proc may be ahead. */
	c->image = p->image;
	c->memcg = p->memcg; /* a child starts in its parent's cgroup */
	c->oom_limit = p->oom_limit;
	c->oom_kills = p->oom_kills;
	c->forked = true;
	c->started_ns = a->now_ns;
	timeline__init(&c->timeline, a->now_ns); /* from what it inherited */
	tracee__resolve_sites(c);
	try_attach(a, c);
}

/* exec replaced the address space: old blocks are gone, probes too. */
void session__on_exec(struct agent *a, pid_t pid, const char *comm,
		      uint64_t image)
{
	struct tracee *t = tracees__find(&a->procs, pid);

	if (!t) {
		if (a->env.ncomms && wanted(a, pid) &&
		    (t = track(a, pid, false)))
			try_attach(a, t);
		return;
	}
	/* Links stay until libc is known: same file, same probes, no gap. */
	attach__forget_python(a, t);
	memset(&t->gc, 0, sizeof(t->gc));
	memset(t->imports, 0, sizeof(t->imports));
	heap__reset(&t->heap);
	timeline__init(&t->timeline, a->now_ns);
	tracee__forget_sites(t);
	t->census_gen++; /* a census being read is of the old image */
	memset(&t->census, 0, sizeof(t->census));
	/* Old mappings would name new addresses wrongly: read them afresh. */
	symbolizer__free(&t->sym);
	symbolizer__init(&t->sym, pid);
	symbolizer__refresh(&t->sym);
	snprintf(t->comm, sizeof(t->comm), "%s", comm);
	tracee__read_identity(t);
	if (image) /* the exec's own: /proc may show a later one */
		t->image = image;
	note_cgroup(t);
	t->attach_tries = 0;
	try_attach(a, t);
}

/*
 * The exit signal as witness, when no OOM record came (lost to a full
 * ring buffer, or the exit learnt from waitpid): a SIGKILL while its
 * memory cgroup counted a new OOM kill since it was noted.
 */
static bool oom_by_signal(const struct tracee *t, int exit_code)
{
	int64_t kills;

	if ((exit_code & 0x7f) != SIGKILL || t->oom_kills < 0)
		return false;
	kills = procs__memcg_oom_kills(&t->memcg);
	return kills > t->oom_kills;
}

/* One line per OOM kill: how it was learnt, and the memory cgroup. */
static void warn_oom(const struct tracee *t, const char *verb, const char *how)
{
	log_warn("pid %d (%s) %s for lack of memory (%s%s%s)", t->pid, t->comm,
		 verb, how, t->memcg.path[0] ? ", memory cgroup " : "",
		 t->memcg.path);
}

void session__on_exit(struct agent *a, pid_t pid, int exit_code)
{
	struct tracee *t = tracees__find(&a->procs, pid);

	if (!t)
		return;
	t->exited = true;
	t->exit_code = exit_code;
	if (!t->oom && oom_by_signal(t, exit_code)) {
		t->oom = true;
		warn_oom(t, "was killed",
			 "SIGKILL as its cgroup counted an OOM kill");
	}
	census_job__on_exit(a, t);
	session__snapshot(a, t, t->oom ? "oom" : "exit");
	if (pid == a->primary)
		a->primary_done = true;
	untrack(a, t);
}

/*
 * The kernel named the victim's memory cgroup (NULL: it could not): read
 * its limit from there. A cgroup removed already keeps the noted limit.
 */
static void oom_cgroup(struct tracee *t, const char *path)
{
	struct memcg m = { .v2 = procs__memcg_v2() };
	int64_t limit;

	if (!path) {
		note_cgroup(t); /* v1 may hide it by now: then the noted one */
		return;
	}
	snprintf(m.path, sizeof(m.path), "%s", path);
	limit = procs__memcg_limit(&m);
	if (limit < 0 && strcmp(m.path, t->memcg.path) == 0)
		limit = t->oom_limit;
	t->memcg = m;
	t->oom_limit = limit;
}

/*
 * The OOM killer chose pid (at_exit: said again as it exits, in case the
 * first record was lost); its exit then writes the snapshot as "oom".
 */
void session__on_oom(struct agent *a, pid_t pid, const char *cgroup,
		     bool at_exit)
{
	struct tracee *t = tracees__find(&a->procs, pid);

	if (!t)
		return;
	oom_cgroup(t, cgroup);
	if (t->oom)
		return; /* told already */
	t->oom = true;
	warn_oom(t, at_exit ? "was killed" : "is being killed", "OOM");
}

/* ---- snapshots ------------------------------------------------------- */

static void read_counters(struct agent *a, struct tracee *t)
{
	struct proc_cfg cfg;
	__u32 key = t->pid;

	if (!bpf_map__lookup_elem(a->skel->maps.traced_pids, &key, sizeof(key),
				  &cfg, sizeof(cfg), 0)) {
		t->dropped = cfg.dropped;
	}
	if (t->primary) /* the recorder's ring: its whole tree's drops */
		t->dropped += recording__dropped(a);
}

static void snapshot_path(struct agent *a, struct tracee *t, const char *reason,
			  char *buf, size_t size, int n)
{
	char comm[16];
	size_t i;

	snprintf(comm, sizeof(comm), "%s", t->comm[0] ? t->comm : "proc");
	for (i = 0; comm[i]; i++)
		if (comm[i] == '/' || comm[i] == ' ')
			comm[i] = '_';
	if (n)
		snprintf(buf, size, "%s/memprof-%s-%d-%s-%d%s",
			 a->env.snapshot_dir, comm, t->pid, reason, n + 1,
			 export__suffix(a->env.format));
	else
		snprintf(buf, size, "%s/memprof-%s-%d-%s%s",
			 a->env.snapshot_dir, comm, t->pid, reason,
			 export__suffix(a->env.format));
}

static int save(struct agent *a, struct tracee *t, json_t *doc,
		const char *reason, char *path, size_t size)
{
	int err, n;

	if (t->primary && a->env.output) {
		snprintf(path, size, "%s", a->env.output);
		return export__save(doc, a->env.format, path, true);
	}
	/* The rolling snapshot has one name, replaced each period. */
	if (strcmp(reason, SNAPSHOT_PERIODIC) == 0) {
		snapshot_path(a, t, reason, path, size, 0);
		return export__save(doc, a->env.format, path, true);
	}
	/* Never clobber: a repeated reason gets -2, -3, ... */
	for (n = 0; n < 10000; n++) {
		snapshot_path(a, t, reason, path, size, n);
		err = export__save(doc, a->env.format, path, false);
		if (err != -EEXIST)
			break;
	}
	return err;
}

/*
 * The chosen place failed (full disk, read-only, gone): keep the data by
 * writing it to $TMPDIR or /var/tmp, and say both in one line.
 */
static void save_elsewhere(struct agent *a, struct tracee *t, json_t *doc,
			   const char *reason, const char *path, int err)
{
	const char *dirs[] = { getenv("TMPDIR"), "/var/tmp", "/tmp" };
	const char *saved_dir = a->env.snapshot_dir;
	char alt[4200];
	size_t i;
	bool primary = t->primary;

	a->write_errors++;
	t->primary = false; /* fall back to per-process names */
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (!dirs[i] || !*dirs[i])
			continue;
		a->env.snapshot_dir = dirs[i];
		if (save(a, t, doc, reason, alt, sizeof(alt)) == 0)
			break;
	}
	a->env.snapshot_dir = saved_dir;
	t->primary = primary;
	if (i < sizeof(dirs) / sizeof(dirs[0]))
		log_err("cannot write snapshot %s: %s; saved to %s", path,
			strerror(-err), alt);
	else
		log_err("cannot write snapshot %s: %s; no fallback place was "
			"writable either",
			path, strerror(-err));
}

/*
 * Forked children (shell pipelines, pyenv shims, a kernel's uname and ip)
 * would litter the directory: they get files only when -D asks, and only
 * those whose peak reached CHILD_FILE_BYTES (the ones worth reading)
 * unless --all-snapshots. The peak, not what they allocated in all: a
 * helper that churns 100 MiB through a 4 KiB buffer held 4 KiB.
 */
static bool wants_file(const struct agent *a, const struct tracee *t)
{
	if (!t->forked)
		return true;
	return a->env.snapshot_dir_set &&
	       (a->env.all_snapshots || t->heap.peak_bytes >= CHILD_FILE_BYTES);
}

/* -v: the file, its size and how long building and writing it took. */
static void report_written(const char *path, uint64_t since_ns)
{
	double ms = (now_monotonic_ns() - since_ns) / 1e6;
	struct stat st;
	char size[16] = "?";

	if (!stat(path, &st))
		text__bytes(st.st_size, size, sizeof(size));
	log_info("wrote %s (%s in %.0f ms)", path, size, ms);
}

int session__snapshot(struct agent *a, struct tracee *t, const char *reason)
{
	struct snap_meta m = {
		.pid = t->pid,
		.comm = t->comm,
		.cmdline = t->cmdline,
		.reason = reason,
		.exit_code = t->exited ? t->exit_code : -1,
		.mono_to_real_ns = snapshot__mono_to_real(),
		.taken_ns = now_monotonic_ns(),
		.unknown_frees = t->heap.unknown_frees,
		.census = &t->census,
		.sites = &t->sites,
		.py = &t->py,
		.cells = &t->cells,
		.oom = t->oom,
		.oom_cgroup = t->memcg.path,
		.oom_limit = t->oom_limit,
		.gc_probed = t->gc.probed,
		.gc_collections = t->gc.collections,
		.gc_ns = t->gc.total_ns,
		.gc_objects = t->gc.objects,
		.gc_bytes_freed = t->gc.bytes_freed,
		.timeline = &t->timeline,
	};
	char path[4200];
	json_t *doc;
	int err;

	bool periodic = strcmp(reason, SNAPSHOT_PERIODIC) == 0;

	if (!wants_file(a, t))
		return 0;
	read_counters(a, t);
	m.dropped_events = t->dropped;
	m.rss_bytes = t->exited ? 0 : procs__rss_bytes(t->pid);
	tracee__resolve_sites(t);
	tracee__sample(t, m.taken_ns); /* up to this instant */
	if (!periodic)
		batch__cells(a->out ? a->out : stderr, t, m.taken_ns);
	doc = snapshot__build(&m, &t->heap);
	if (!doc)
		return -ENOMEM;
	err = save(a, t, doc, reason, path, sizeof(path));
	if (!err) {
		report_written(path, m.taken_ns);
		a->snapshots_written++;
		snprintf(a->last_snapshot, sizeof(a->last_snapshot), "%s",
			 path);
	}
	if (err)
		save_elsewhere(a, t, doc, reason, path, err);
	else if (t->cells.n && a->out && !periodic)
		fprintf(a->out, "  snapshot: %s\n", path); /* under its table */
	json_decref(doc);
	return err;
}

void session__snapshot_all(struct agent *a, const char *reason)
{
	size_t i;

	for (i = 0; i < a->procs.len; i++)
		session__snapshot(a, a->procs.v[i], reason);
}

/* ---- housekeeping ----------------------------------------------------- */

/* Reap the "--" command so it does not linger as a zombie. */
static void reap(struct agent *a)
{
	int status;

	if (a->primary && waitpid(a->primary, &status, WNOHANG) == a->primary) {
		a->primary_status = status;
		a->primary_reaped = true;
	}
}

/* --snapshot-every: each traced process's rolling snapshot, replaced. */
static void periodic_snapshots(struct agent *a)
{
	uint64_t every = a->env.snapshot_every * 1e9;
	size_t i;

	if (!every || a->now_ns - a->last_periodic_ns < every)
		return;
	a->last_periodic_ns = a->now_ns;
	for (i = 0; i < a->procs.len; i++)
		if (!a->procs.v[i]->exited)
			session__snapshot(a, a->procs.v[i], SNAPSHOT_PERIODIC);
}

void session__tick(struct agent *a, bool rescan)
{
	size_t i;

	reap(a);
	census_job__poll(a);
	periodic_snapshots(a);
	if (rescan && a->env.ncomms)
		procs__each(scan_one, a); /* catches prctl renames too */
	for (i = 0; i < a->procs.len; i++) {
		struct tracee *t = a->procs.v[i];

		read_counters(a, t);
		tracee__sample(t, a->now_ns);
		if (t->attach == ATTACH_PENDING ||
		    (t->attach == ATTACH_BLOCKED &&
		     ++t->attach_tries % CONFLICT_EVERY == 0))
			try_attach(a, t);
		else if (t->python && !t->cell_markers)
			attach__cell_markers(a, t);
	}
}

void session__finish(struct agent *a, const char *reason)
{
	size_t i;

	/*
	 * The probes come off in the background while the snapshots are
	 * written: each uprobe's removal waits for a grace period (~1.5 s for
	 * a kernel's links, one after another), and writing takes as long.
	 * Whatever the probes record meanwhile is not read: the snapshots are
	 * of the moment the agent stopped.
	 */
	census_job__finish(a);
	for (i = 0; i < a->procs.len; i++)
		attach__detach(a->procs.v[i]);
	if (a->procs.len)
		log_info("removing the probes of %zu processes in the "
			 "background",
			 a->procs.len);
	while (a->procs.len) {
		struct tracee *t = a->procs.v[a->procs.len - 1];

		session__snapshot(a, t, reason);
		untrack(a, t);
	}
	reap(a);
}

bool session__active(const struct agent *a)
{
	if (a->env.command)
		return !a->primary_done;
	if (a->env.ncomms)
		return true; /* waits for kernels started later */
	return a->procs.len > 0;
}
