// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "attach.h"
#include "census_job.h"
#include "lib/loop.h"
#include "lib/log.h"
#include "lib/text.h"

/* The one census being read. */
struct census_job {
	pthread_t thread;
	atomic_bool done;
	pid_t pid;
	int efd; /* told when done (the agent's census_efd), or -1 */
	unsigned gen; /* the process's census_gen when it began */
	int err;
	struct census c;
};

/* ---- the reading thread ----------------------------------------------- */

static void *read_census(void *arg)
{
	struct census_job *j = arg;

	uint64_t one = 1;

	j->err = census__take(j->pid, &j->c);
	atomic_store(&j->done, true);
	/* Lost, the word only delays the merge: the tick collects it. */
	if (j->efd >= 0 && write(j->efd, &one, sizeof(one)) < 0)
		j->efd = -1;
	return NULL;
}

static struct census_job *start(struct agent *a, struct tracee *t)
{
	struct census_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->pid = t->pid;
	j->efd = a->census_efd;
	j->gen = t->census_gen;
	if (pthread_create(&j->thread, NULL, read_census, j)) {
		free(j);
		return NULL;
	}
	t->census.state = CENSUS_RUNNING;
	return j;
}

static void end(struct census_job *j)
{
	census__free(&j->c);
	free(j);
}

/* ---- merging ----------------------------------------------------------- */

/* Nothing counted: the window closes, the snapshot says why. */
static void drop(struct tracee *t, const char *why)
{
	before__close_window(&t->heap.before);
	t->census.state = CENSUS_FAILED;
	snprintf(t->census.warning, sizeof(t->census.warning), "%s", why);
}

/* Dropped, and said so on stderr once. */
static void give_up(struct tracee *t, const char *why)
{
	drop(t, why);
	log_warn("pid %d (%s): census not taken: %s; counting from attach "
		 "only",
		 t->pid, t->comm, why);
}

/* What the census found and what was counted, for the outputs. */
static void summarize(struct tracee *t, const struct census *c)
{
	struct census_summary *s = &t->census;
	int k;

	s->state = CENSUS_DONE;
	s->took_ns = c->took_ns;
	snprintf(s->glibc, sizeof(s->glibc), "%s", c->glibc);
	for (k = 0; k < CENSUS_KINDS; k++) {
		const struct site *site =
			&t->heap.sites[t->heap.before.site[k]];

		s->bytes[k] = site->live_bytes;
		s->count[k] = site->live_count;
	}
	s->tcache_skipped = c->tcache_skipped;
	s->fastbin_skipped = c->fastbin_skipped;
	s->in_window = t->heap.before.dropped;
	s->unwalked_bytes = c->unwalked_bytes;
	snprintf(s->warning, sizeof(s->warning), "%s", c->warning);
}

/* One line with -v: what was found, and how long the read took. */
static void report(const struct tracee *t)
{
	const struct census_summary *s = &t->census;
	char b[CENSUS_KINDS][16];
	int k;

	for (k = 0; k < CENSUS_KINDS; k++)
		text__bytes(s->bytes[k], b[k], sizeof(b[k]));
	log_info("pid %d (%s): census: heap %s in %llu blocks, mmapped %s in "
		 "%llu, Python objects %s, other anonymous %s; %llu free "
		 "chunks left out, %llu changed while read; in %.1f ms, the "
		 "process was not stopped",
		 t->pid, t->comm, b[CENSUS_HEAP],
		 (unsigned long long)s->count[CENSUS_HEAP], b[CENSUS_MMAPPED],
		 (unsigned long long)s->count[CENSUS_MMAPPED], b[CENSUS_PYTHON],
		 b[CENSUS_ANON],
		 (unsigned long long)(s->tcache_skipped + s->fastbin_skipped),
		 (unsigned long long)s->in_window, s->took_ns / 1e6);
	if (s->warning[0])
		log_warn("pid %d (%s): census: %s", t->pid, t->comm,
			 s->warning);
}

/*
 * Another allocator's blocks cannot be read (jemalloc, one in the
 * executable): its mappings are "other anonymous". Said once, here.
 */
static void note_allocator(struct tracee *t, struct census *c)
{
	if (attach__is_libc(t->alloc_lib))
		return;
	census__warn(c,
		     "the allocator in %s is not glibc's: its memory is "
		     "counted as other anonymous memory, not block by block",
		     text__base_name(t->alloc_lib));
}

/*
 * The "(before attach)" row's high is what the process held at the merge;
 * a peak the merge made was reached there, not in the running cell.
 */
static void note_run(struct tracee *t, bool new_peak)
{
	int32_t run = t->sites.v[t->heap.before.site[CENSUS_HEAP]].run;
	struct cell_run *r;

	if (run < 0)
		return;
	r = &t->cells.runs[run];
	r->start_live = r->max_live = t->heap.live_bytes;
	if (new_peak)
		t->cells.peak_run = run;
}

/* The ring is drained: what changed while the census was read is known. */
static void merge(struct agent *a, struct tracee *t, struct census_job *j)
{
	uint64_t peak;

	if (j->err) {
		give_up(t, j->err == -ESRCH ? "the process exited"
					    : strerror(-j->err));
		return;
	}
	peak = t->heap.peak_bytes;
	if (tracee__before_sites(t, a->now_ns) ||
	    heap__adopt_census(&t->heap, &j->c, a->now_ns)) {
		give_up(t, "out of memory");
		return;
	}
	note_allocator(t, &j->c);
	summarize(t, &j->c);
	note_run(t, t->heap.peak_bytes > peak);
	report(t);
}

/* The job's process, if it is still the one the census was read from. */
static struct tracee *owner(struct agent *a, const struct census_job *j)
{
	struct tracee *t = tracees__find(&a->procs, j->pid);

	return t && t->census_gen == j->gen && t->census.state == CENSUS_RUNNING
		       ? t
		       : NULL;
}

/* The census into its process, if that is still the one it was read from. */
static void merge_and_end(struct agent *a, struct census_job *j)
{
	struct tracee *t = owner(a, j);

	if (t)
		merge(a, t, j);
	end(j);
}

/*
 * Drain the ring first (its events may even end the process): every event
 * up to now is then in the window. An exit among them merges the census
 * there, before its last snapshot is written (census_job__on_exit).
 */
static void collect(struct agent *a, bool drain)
{
	struct census_job *j = a->census;

	/*
	 * The job is ours before the ring is drained: an event handler may
	 * attach a process and ask for (and start) the next census.
	 */
	a->census = NULL;
	pthread_join(j->thread, NULL); /* its census is whole from here */
	if (drain) {
		a->census_merging = j;
		ring_buffer__consume(a->rb);
		j = a->census_merging; /* NULL: merged at its exit */
		a->census_merging = NULL;
	}
	if (j)
		merge_and_end(a, j);
}

/* ---- the queue ---------------------------------------------------------- */

static struct tracee *next_queued(struct agent *a)
{
	size_t i;

	for (i = 0; i < a->procs.len; i++)
		if (a->procs.v[i]->census.state == CENSUS_QUEUED &&
		    !a->procs.v[i]->exited)
			return a->procs.v[i];
	return NULL;
}

void census_job__poll(struct agent *a)
{
	struct tracee *t;

	/* Not inside another's drain: the next poll collects it. */
	if (a->census && atomic_load(&a->census->done) && !a->census_merging)
		collect(a, true);
	if (a->census || !(t = next_queued(a)))
		return;
	a->census = start(a, t);
	if (!a->census)
		give_up(t, "cannot start its thread");
}

void census_job__request(struct agent *a, struct tracee *t)
{
	if (a->env.no_census) {
		t->census.state = CENSUS_OFF;
		return;
	}
	memset(&t->census, 0, sizeof(t->census));
	if (before__open_window(&t->heap.before)) {
		give_up(t, "out of memory");
		return;
	}
	t->census.state = CENSUS_QUEUED;
	census_job__poll(a);
}

void census_job__finish(struct agent *a)
{
	size_t i;

	while (a->census)
		collect(a, true); /* joins: a census takes seconds at most */
	for (i = 0; i < a->procs.len; i++) {
		struct tracee *t = a->procs.v[i];

		if (t->census.state == CENSUS_QUEUED)
			drop(t, "the agent stopped before it was read");
	}
}

void census_job__on_exit(struct agent *a, struct tracee *t)
{
	struct census_job *j = a->census_merging;

	if (j && j->pid == t->pid) {
		a->census_merging = NULL; /* its collect drains no more */
		merge_and_end(a, j);
	} else if (a->census && a->census->pid == t->pid)
		collect(a, false); /* inside the drain: no second one */
	else if (t->census.state == CENSUS_QUEUED)
		give_up(t, "it exited before its census was read");
}

/* The thread's word that it is done: merge now, not at the next tick. */
static void on_done(struct loop *l, int fd, unsigned events, void *data)
{
	uint64_t n;

	(void)l, (void)events;
	if (read(fd, &n, sizeof(n)) < 0)
		return;
	census_job__poll(data);
}

int census_job__start(struct agent *a, struct loop *loop)
{
	a->census_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->census_efd < 0)
		return -errno;
	return loop__add_fd(loop, a->census_efd, LOOP_IN, on_done, a);
}

void census_job__stop(struct agent *a, struct loop *loop)
{
	while (a->census)
		collect(a, false);
	if (a->census_efd >= 0) {
		loop__del_fd(loop, a->census_efd);
		close(a->census_efd);
		a->census_efd = -1;
	}
}
