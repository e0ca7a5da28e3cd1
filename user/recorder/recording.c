// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "agent.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/text.h"
#include "model/events.h"
#include "procs/procs.h"
#include "recording.h"
#include "shmring.h"

#define RING_BYTES (64u << 20) /* ~1.3 million records between drains */
#define STALL_NS 500000000ULL /* a record of an unknown pid waits this long */
#define DEAD_NS 2000000000ULL /* a record reserved, never committed */
#define SO_NAME "libmemprof-recorder.so"
#define RING_NAME "/memfd:memprof-ring"

struct recording {
	struct shmring ring;
	char so[PATH_MAX]; /* the library the command preloads */
	char *old_preload; /* LD_PRELOAD as it was, to put back */
	bool had_preload;
	bool draining; /* recording__drain runs (it may be asked again) */
	uint64_t stall_at, stall_since; /* the waiting record, and since */
	uint64_t stale; /* records dropped: their process never showed */
	uint64_t head, head_since; /* where the reader stands, since when */
};

/* The library: $MEMPROF_BPF_RECORDER, else build/ next to the agent. */
static int find_library(char *out, size_t size)
{
	const char *env = getenv("MEMPROF_BPF_RECORDER");
	int err;

	if (env && *env) {
		snprintf(out, size, "%s", env);
		return access(out, R_OK) ? -errno : 0;
	}
	err = procs__beside_self("build/" SO_NAME, out, size);
	return err == -ENOENT ? procs__beside_self(SO_NAME, out, size) : err;
}

int recording__start(struct agent *a)
{
	struct recording *r;
	int err;

	if (!a->env.recorder || !a->env.command)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return 2;
	err = find_library(r->so, sizeof(r->so));
	if (!err)
		err = shmring__create(&r->ring, RING_BYTES);
	if (err) {
		log_err("--probes recorder: %s: %s", r->so[0] ? r->so : SO_NAME,
			strerror(-err));
		free(r);
		return 2;
	}
	a->rec = r;
	return 0;
}

void recording__stop(struct agent *a)
{
	if (!a->rec)
		return;
	shmring__close(&a->rec->ring);
	free(a->rec->old_preload);
	free(a->rec);
	a->rec = NULL;
}

/*
 * The command inherits the agent's environment and open fds: the ring's
 * memfd (not close-on-exec for that moment), its number, and the library
 * first in LD_PRELOAD.
 */
void recording__before_launch(struct agent *a)
{
	struct recording *r = a->rec;
	const char *old = getenv("LD_PRELOAD");
	char fd[16], *preload;

	if (!r)
		return;
	r->had_preload = old != NULL;
	r->old_preload = old ? strdup(old) : NULL;
	if (asprintf(&preload, "%s%s%s", r->so, old && *old ? ":" : "",
		     old ? old : "") < 0)
		return;
	setenv("LD_PRELOAD", preload, 1);
	free(preload);
	snprintf(fd, sizeof(fd), "%d", r->ring.fd);
	setenv("MEMPROF_RECORDER_FD", fd, 1);
	fcntl(r->ring.fd, F_SETFD, 0);
}

/* Back as it was: no other child of the agent gets the ring. */
void recording__after_launch(struct agent *a)
{
	struct recording *r = a->rec;

	if (!r)
		return;
	fcntl(r->ring.fd, F_SETFD, FD_CLOEXEC);
	unsetenv("MEMPROF_RECORDER_FD");
	if (r->had_preload)
		setenv("LD_PRELOAD", r->old_preload ? r->old_preload : "", 1);
	else
		unsetenv("LD_PRELOAD");
}

/* Where pid maps the ring's header (its memfd, by name), or 0. */
static uint64_t ring_address(pid_t pid)
{
	unsigned long long start, off;
	char path[64], line[4096];
	uint64_t at = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	while (f && !at && fgets(line, sizeof(line), f))
		if (strstr(line, RING_NAME) &&
		    sscanf(line, "%llx-%*x %*s %llx", &start, &off) == 2 &&
		    off == 0)
			at = start;
	if (f)
		fclose(f);
	return at;
}

bool recording__in(const struct agent *a, pid_t pid, char **files, int n)
{
	int i;

	if (!a->rec)
		return false;
	for (i = 0; i < n; i++)
		if (!strcmp(text__base_name(files[i]), SO_NAME))
			return ring_address(pid) != 0;
	return false;
}

/*
 * One record: to the handler when its process is known. Otherwise its
 * fork may still wait in the BPF ring: stop here until the next drain,
 * and drop it if it waited STALL_NS (its process is gone, or was never
 * ours).
 */
static bool take(const void *data, uint32_t len, void *ctx)
{
	struct agent *a = ctx;
	struct recording *r = a->rec;
	const struct rec_hdr *h = data;
	uint64_t at = r->ring.hdr->taken, now;

	if (len >= sizeof(*h) && !tracees__find(&a->procs, h->pid)) {
		now = now_monotonic_ns();
		if (r->stall_at != at + 1) {
			r->stall_at = at + 1;
			r->stall_since = now;
			return false;
		}
		if (now - r->stall_since < STALL_NS)
			return false;
		r->stale++;
		return true;
	}
	r->stall_at = 0;
	events__handle(a, (void *)data, len);
	return true;
}

/*
 * The reader has stood at one place for DEAD_NS: if the record there was
 * reserved and never committed, its writer died in between (SIGKILL, the
 * OOM killer) and would stop the ring for good: skip it, counted.
 */
static void skip_dead_writer(struct recording *r)
{
	uint64_t at = r->ring.hdr->taken, now = now_monotonic_ns();

	if (at != r->head) {
		r->head = at;
		r->head_since = now;
		return;
	}
	if (now - r->head_since >= DEAD_NS && shmring__skip_head(&r->ring))
		r->head_since = now;
}

void recording__drain(struct agent *a)
{
	struct recording *r = a->rec;

	if (!r || r->draining)
		return;
	r->draining = true;
	shmring__consume(&r->ring, take, a);
	skip_dead_writer(r);
	r->draining = false;
}

/* pid's slot in the ring header, or a free one (NULL: all taken). */
static struct shmring_proc *proc_slot(struct shmring_hdr *h, pid_t pid)
{
	struct shmring_proc *free_ = NULL;
	int i;

	for (i = 0; i < SHMRING_PROCS; i++) {
		if (h->procs[i].pid == (uint32_t)pid)
			return &h->procs[i];
		if (!h->procs[i].pid && !free_)
			free_ = &h->procs[i];
	}
	return free_;
}

/*
 * Write a slot as the recorder reads it: the sequence odd while it
 * changes, then the generation bumped so every process looks again.
 */
static void write_slot(struct shmring_hdr *h, struct shmring_proc *s,
		       const struct shmring_proc *v)
{
	uint32_t seq = s->seq;

	__atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	s->image = v->image;
	s->code_type = v->code_type;
	s->tp_dealloc = v->tp_dealloc;
	s->cfg = v->cfg;
	__atomic_store_n(&s->pid, v->pid, __ATOMIC_RELAXED);
	__atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
	__atomic_fetch_add(&h->procs_gen, 1, __ATOMIC_RELEASE);
}

int recording__python(struct agent *a, pid_t pid, const struct py_cfg *cfg,
		      uint64_t code_type, uint32_t tp_dealloc)
{
	struct shmring_proc v = { .pid = (uint32_t)pid,
				  .code_type = code_type,
				  .tp_dealloc = tp_dealloc,
				  .cfg = *cfg };
	unsigned long random = procs__auxv(pid, AT_RANDOM);
	struct shmring_proc *s;

	if (!a->rec)
		return -ENOENT;
	if (!random || procs__read_mem(pid, random, &v.image, sizeof(v.image)))
		return -ESRCH;
	s = proc_slot(a->rec->ring.hdr, pid);
	if (!s)
		return -ENOSPC;
	v.cfg.sig_cache = 1; /* the recorder hooks code deallocation */
	write_slot(a->rec->ring.hdr, s, &v);
	return 0;
}

void recording__forget_python(struct agent *a, pid_t pid)
{
	struct shmring_proc v = { 0 }, *s;

	if (!a->rec)
		return;
	s = proc_slot(a->rec->ring.hdr, pid);
	if (s && s->pid == (uint32_t)pid)
		write_slot(a->rec->ring.hdr, s, &v);
}

uint64_t recording__cut_address(const struct agent *a, pid_t pid)
{
	uint64_t at = a->rec ? ring_address(pid) : 0;

	return at ? at + offsetof(struct shmring_hdr, reserved) : 0;
}

/*
 * A record below the cut may still be being written (its writer is
 * between reserve and commit, a few instructions): wait this long for
 * it, then go on (the marker is handled a little early, never lost).
 */
#define CUT_WAIT_NS 2000000ULL

void recording__drain_to(struct agent *a, uint64_t cut)
{
	struct recording *r = a->rec;
	uint64_t since = 0;

	if (!r || r->draining || !cut)
		return;
	r->draining = true;
	while (shmring__consume_to(&r->ring, cut, take, a),
	       shmring__taken(&r->ring) < cut && !r->stall_at) {
		if (!since)
			since = now_monotonic_ns();
		else if (now_monotonic_ns() - since > CUT_WAIT_NS)
			break;
		sched_yield();
	}
	r->draining = false;
}

void recording__drain_reserved(struct agent *a)
{
	if (a->rec)
		recording__drain_to(a,
				    __atomic_load_n(&a->rec->ring.hdr->reserved,
						    __ATOMIC_ACQUIRE));
}

uint64_t recording__dropped(const struct agent *a)
{
	if (!a->rec)
		return 0;
	return __atomic_load_n(&a->rec->ring.hdr->dropped, __ATOMIC_RELAXED) +
	       a->rec->stale;
}
