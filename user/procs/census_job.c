// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "census_job.h"
#include "lib/log.h"
#include "lib/text.h"

/* The one census being read. */
struct census_job {
	pthread_t thread;
	atomic_bool done;
	pid_t pid;
	unsigned gen; /* the process's census_gen when it began */
	int err;
	struct census c;
};

/* ---- the reading thread ----------------------------------------------- */

static void *read_census(void *arg)
{
	struct census_job *j = arg;

	j->err = census__take(j->pid, &j->c);
	atomic_store(&j->done, true);
	return NULL;
}

static struct census_job *start(struct tracee *t)
{
	struct census_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->pid = t->pid;
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
	pthread_join(j->thread, NULL);
	census__free(&j->c);
	free(j);
}

/* ---- merging ----------------------------------------------------------- */

/* Nothing counted: the window closes, the warning says why. */
static void give_up(struct tracee *t, const char *why)
{
	before__close_window(&t->heap.before);
	t->census.state = CENSUS_FAILED;
	snprintf(t->census.warning, sizeof(t->census.warning), "%s", why);
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
	summarize(t, &j->c);
	if (t->heap.before.site[0] < t->sites.n)
		cells__on_alloc(&t->cells,
				t->sites.v[t->heap.before.site[0]].run,
				t->heap.live_bytes, t->heap.peak_bytes > peak);
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

/*
 * Drain the ring first (its events may even end the process): every event
 * up to now is then in the window.
 */
static void collect(struct agent *a)
{
	struct census_job *j = a->census;
	struct tracee *t;

	ring_buffer__consume(a->rb);
	t = owner(a, j);
	if (t)
		merge(a, t, j);
	end(j);
	a->census = NULL;
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

	if (a->census && atomic_load(&a->census->done))
		collect(a);
	if (a->census || !(t = next_queued(a)))
		return;
	a->census = start(t);
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

	if (a->census)
		collect(a); /* joins: a census takes seconds at most */
	for (i = 0; i < a->procs.len; i++) {
		struct tracee *t = a->procs.v[i];

		if (t->census.state == CENSUS_QUEUED) {
			before__close_window(&t->heap.before);
			t->census.state = CENSUS_FAILED;
			snprintf(t->census.warning, sizeof(t->census.warning),
				 "the agent stopped before it was read");
		}
	}
}
