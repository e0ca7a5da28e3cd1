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
#include <sys/stat.h>
#include <unistd.h>
#include "agent.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/text.h"
#include "model/events.h"
#include "procs/procs.h"
#include "procs/tracee.h"
#include "recording.h"
#include "shmring.h"

#define RING_BYTES (64u << 20) /* ~1.3 million records between drains */
#define MAX_RINGS 64 /* the command's, and every kernel's adopted */
#define STALL_NS 500000000ULL /* a record of an unknown pid waits this long */
#define DEAD_NS 2000000000ULL /* a record reserved, never committed */
#define SO_NAME "libmemprof-recorder.so"
#define RING_NAME "/memfd:memprof-ring"

/* One ring: the command tree's, or a kernel's (and its children's). */
struct ring {
	struct shmring ring;
	uint64_t ino; /* the memfd's inode: a ring is adopted once */
	pid_t owner; /* the process it was made for */
	uint64_t stall_at, stall_since; /* the waiting record, and since */
	uint64_t head, head_since; /* where the reader stands, since when */
};

struct recording {
	struct ring rings[MAX_RINGS];
	int nrings;
	char so[PATH_MAX]; /* the library the command preloads */
	char *old_preload; /* LD_PRELOAD as it was, to put back */
	bool had_preload;
	bool draining; /* a drain runs (a record's handler may ask again) */
	struct ring *cur; /* the ring being drained */
	uint64_t stale; /* records dropped: their process never showed */
	uint64_t closed_dropped; /* drops of rings closed since */
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

int recording__library(char *out, size_t size)
{
	return find_library(out, size);
}

/* Rings are always possible (a kernel's may be adopted); the command's
 * is made only for a command that records. */
int recording__start(struct agent *a)
{
	struct recording *r = calloc(1, sizeof(*r));
	struct stat st;
	struct ring *g;
	int err;

	if (!r)
		return 2;
	a->rec = r;
	if (!a->env.recorder || !a->env.command)
		return 0;
	g = &r->rings[0];
	err = find_library(r->so, sizeof(r->so));
	if (!err)
		err = shmring__create(&g->ring, RING_BYTES);
	if (err) {
		log_err("--probes recorder: %s: %s", r->so[0] ? r->so : SO_NAME,
			strerror(-err));
		return 2;
	}
	g->ring.hdr->consumer = (uint32_t)getpid();
	g->ino = fstat(g->ring.fd, &st) ? 0 : st.st_ino;
	r->nrings = 1;
	return 0;
}

static void write_slot(struct shmring_hdr *h, struct shmring_proc *s,
		       const struct shmring_proc *v);

/* No process walks stacks for nobody: every slot of the header freed. */
static void clear_slots(struct shmring_hdr *h)
{
	struct shmring_proc none = { 0 };
	int i;

	for (i = 0; i < SHMRING_PROCS; i++)
		if (h->procs[i].pid)
			write_slot(h, &h->procs[i], &none);
}

/* Let go of a ring: its writers go back to waiting (one load a call). */
static void close_ring(struct recording *r, struct ring *g)
{
	uint32_t me = (uint32_t)getpid();

	clear_slots(g->ring.hdr);
	r->closed_dropped +=
		__atomic_load_n(&g->ring.hdr->dropped, __ATOMIC_RELAXED);
	__atomic_compare_exchange_n(&g->ring.hdr->consumer, &me, 0, false,
				    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
	shmring__close(&g->ring);
	memset(g, 0, sizeof(*g));
	g->ring.fd = -1;
}

void recording__stop(struct agent *a)
{
	struct recording *r = a->rec;
	int i;

	if (!r)
		return;
	for (i = 0; i < r->nrings; i++)
		if (r->rings[i].ring.hdr)
			close_ring(r, &r->rings[i]);
	free(r->old_preload);
	free(r);
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

	if (!r || !r->nrings)
		return;
	r->had_preload = old != NULL;
	r->old_preload = old ? strdup(old) : NULL;
	if (asprintf(&preload, "%s%s%s", r->so, old && *old ? ":" : "",
		     old ? old : "") < 0)
		return;
	setenv("LD_PRELOAD", preload, 1);
	free(preload);
	snprintf(fd, sizeof(fd), "%d", r->rings[0].ring.fd);
	setenv("MEMPROF_RECORDER_FD", fd, 1);
	fcntl(r->rings[0].ring.fd, F_SETFD, 0);
}

/* Back as it was: no other child of the agent gets the ring. */
void recording__after_launch(struct agent *a)
{
	struct recording *r = a->rec;

	if (!r || !r->nrings)
		return;
	fcntl(r->rings[0].ring.fd, F_SETFD, FD_CLOEXEC);
	unsetenv("MEMPROF_RECORDER_FD");
	if (r->had_preload)
		setenv("LD_PRELOAD", r->old_preload ? r->old_preload : "", 1);
	else
		unsetenv("LD_PRELOAD");
	r->rings[0].owner = a->primary;
}

/*
 * Where pid maps the ring's header (its memfd, by name): its start, and
 * its range as /proc/PID/map_files names it. 0 when it maps none.
 */
static uint64_t ring_mapping(pid_t pid, char *range, size_t size)
{
	unsigned long long start, end, off;
	char path[64], line[4096];
	uint64_t at = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	while (f && !at && fgets(line, sizeof(line), f))
		if (strstr(line, RING_NAME) &&
		    sscanf(line, "%llx-%llx %*s %llx", &start, &end, &off) ==
			    3 &&
		    off == 0) {
			at = start;
			snprintf(range, size, "%llx-%llx", start, end);
		}
	if (f)
		fclose(f);
	return at;
}

/*
 * The ring pid writes to, opened through its mapping (its fd may be
 * closed: Python's subprocess closes what it does not pass). -errno.
 */
static int open_ring_of(pid_t pid, const char *range)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%s", (int)pid, range);
	fd = open(path, O_RDWR | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* The ring with this inode, if the agent reads it already. */
static struct ring *known_ring(struct recording *r, uint64_t ino)
{
	int i;

	for (i = 0; i < r->nrings; i++)
		if (r->rings[i].ring.hdr && r->rings[i].ino == ino)
			return &r->rings[i];
	return NULL;
}

static struct ring *free_ring(struct recording *r)
{
	int i;

	for (i = 0; i < r->nrings; i++)
		if (!r->rings[i].ring.hdr)
			return &r->rings[i];
	return r->nrings < MAX_RINGS ? &r->rings[r->nrings++] : NULL;
}

static bool discard(const void *data, uint32_t len, void *ctx)
{
	(void)data, (void)len, (void)ctx;
	return true;
}

/*
 * A ring a kernel's recorder made and waits on: read it from now on. Not
 * one another live agent reads (it would lose records to us): then the
 * process gets uprobes, which see the recorder's calls into libc.
 */
static struct ring *adopt(struct agent *a, pid_t pid, const char *range)
{
	struct recording *r = a->rec;
	uint32_t other;
	struct ring *g;
	struct stat st;
	int fd = open_ring_of(pid, range);

	if (fd < 0 || fstat(fd, &st)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	g = known_ring(r, st.st_ino);
	if (g) {
		close(fd);
		return g;
	}
	g = free_ring(r);
	if (!g || shmring__map(&g->ring, fd)) {
		close(fd);
		return NULL;
	}
	other = __atomic_load_n(&g->ring.hdr->consumer, __ATOMIC_ACQUIRE);
	if (other && (pid_t)other != getpid() && procs__alive((pid_t)other)) {
		log_warn("pid %d: its recorder is read by another agent (pid "
			 "%u): traced with uprobes",
			 pid, other);
		shmring__close(&g->ring);
		memset(g, 0, sizeof(*g));
		return NULL;
	}
	/* Whatever an earlier agent left: not ours to count. */
	clear_slots(g->ring.hdr);
	shmring__consume(&g->ring, discard, NULL);
	__atomic_store_n(&g->ring.hdr->consumer, (uint32_t)getpid(),
			 __ATOMIC_RELEASE);
	g->ino = st.st_ino;
	g->owner = pid;
	log_info("pid %d: reading its in-process recorder", pid);
	return g;
}

int recording__in(struct agent *a, struct tracee *t, char **files, int n)
{
	struct recording *r = a->rec;
	char range[64];
	struct ring *g;
	uint64_t at;
	int i;

	if (!r)
		return 0;
	for (i = 0; i < n; i++)
		if (!strcmp(text__base_name(files[i]), SO_NAME))
			break;
	if (i == n)
		return 0;
	at = ring_mapping(t->pid, range, sizeof(range));
	if (!at)
		return -EAGAIN;
	/* The command's tree: the agent's own ring. */
	g = adopt(a, t->pid, range);
	if (!g)
		return 0;
	t->ring_at = at;
	t->recorder_late = g != &r->rings[0] && !t->forked;
	t->ring = (int)(g - r->rings);
	return 1;
}

/*
 * Must this record wait for the BPF ring? Its process is not known yet
 * (its fork record not read), or it begins an image whose exec record is
 * not handled yet: what follows is not the old image's.
 */
static bool must_wait(const struct tracee *t, const void *data, uint32_t len)
{
	const struct rec_image *im = data;

	if (!t)
		return true;
	return im->hdr.type == REC_IMAGE && len >= sizeof(*im) && t->image &&
	       im->image && im->image != t->image;
}

/* Has the reader stood at this record STALL_NS? Starts the clock if not. */
static bool waited_out(struct ring *g)
{
	uint64_t at = g->ring.hdr->taken, now = now_monotonic_ns();

	if (g->stall_at != at + 1) {
		g->stall_at = at + 1;
		g->stall_since = now;
		return false;
	}
	return now - g->stall_since >= STALL_NS;
}

/*
 * One record: to the handler when it need not wait. Otherwise stop here
 * until the next drain. One of an unknown process that waited STALL_NS
 * is dropped (its process is gone, or was never ours); an image whose
 * exec record never came (lost to a full BPF ring) is taken as it is.
 */
static bool take(const void *data, uint32_t len, void *ctx)
{
	struct agent *a = ctx;
	struct recording *r = a->rec;
	struct ring *g = r->cur;
	const struct rec_hdr *h = data;
	struct tracee *t;

	if (len >= sizeof(*h)) {
		t = tracees__find(&a->procs, h->pid);
		if (must_wait(t, data, len)) {
			if (!waited_out(g))
				return false;
			if (!t) {
				r->stale++;
				return true;
			}
		}
	}
	g->stall_at = 0;
	events__handle(a, (void *)data, len);
	return true;
}

/*
 * The reader has stood at one place for DEAD_NS: if the record there was
 * reserved and never committed, its writer died in between (SIGKILL, the
 * OOM killer) and would stop the ring for good: skip it, counted.
 */
static void skip_dead_writer(struct ring *g)
{
	uint64_t at = g->ring.hdr->taken, now = now_monotonic_ns();

	if (at != g->head) {
		g->head = at;
		g->head_since = now;
		return;
	}
	if (now - g->head_since >= DEAD_NS && shmring__skip_head(&g->ring))
		g->head_since = now;
}

/* Is any tracee still writing to ring i? */
static bool ring_in_use(struct agent *a, struct ring *g, int i)
{
	size_t k;

	if (g->owner && procs__alive(g->owner))
		return true;
	for (k = 0; k < a->procs.len; k++)
		if (a->procs.v[k]->recorder && a->procs.v[k]->ring == i)
			return true;
	return false;
}

/* Every ring, to what is committed; a kernel's ring goes with it. */
void recording__drain(struct agent *a)
{
	struct recording *r = a->rec;
	int i;

	if (!r || r->draining)
		return;
	r->draining = true;
	for (i = 0; i < r->nrings; i++) {
		struct ring *g = &r->rings[i];

		if (!g->ring.hdr)
			continue;
		r->cur = g;
		shmring__consume(&g->ring, take, a);
		skip_dead_writer(g);
		if (i > 0 &&
		    shmring__taken(&g->ring) ==
			    __atomic_load_n(&g->ring.hdr->reserved,
					    __ATOMIC_ACQUIRE) &&
		    !ring_in_use(a, g, i))
			close_ring(r, g);
	}
	r->draining = false;
}

/* The ring pid writes to, or NULL. */
static struct ring *ring_of(struct agent *a, pid_t pid)
{
	struct tracee *t = tracees__find(&a->procs, pid);

	if (!a->rec || !t || !t->recorder || t->ring < 0 ||
	    t->ring >= a->rec->nrings || !a->rec->rings[t->ring].ring.hdr)
		return NULL;
	return &a->rec->rings[t->ring];
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
	struct ring *g = ring_of(a, pid);
	struct shmring_proc *s;

	if (!g)
		return -ENOENT;
	v.image = procs__image(pid);
	if (!v.image)
		return -ESRCH;
	s = proc_slot(g->ring.hdr, pid);
	if (!s)
		return -ENOSPC;
	v.cfg.sig_cache = 1; /* the recorder hooks code deallocation */
	write_slot(g->ring.hdr, s, &v);
	return 0;
}

void recording__forget_python(struct agent *a, pid_t pid)
{
	struct shmring_proc v = { 0 }, *s;
	struct ring *g = ring_of(a, pid);

	if (!g)
		return;
	s = proc_slot(g->ring.hdr, pid);
	if (s && s->pid == (uint32_t)pid)
		write_slot(g->ring.hdr, s, &v);
}

uint64_t recording__cut_address(const struct tracee *t)
{
	return t->recorder && t->ring_at
		       ? t->ring_at + offsetof(struct shmring_hdr, reserved)
		       : 0;
}

/*
 * A record below the cut may still be being written (its writer is
 * between reserve and commit, a few instructions): wait this long for
 * it, then go on (the marker is handled a little early, never lost).
 */
#define CUT_WAIT_NS 2000000ULL

/* g's records reserved before cut, waiting briefly for late commits. */
static void drain_ring_to(struct agent *a, struct ring *g, uint64_t cut)
{
	struct recording *r = a->rec;
	uint64_t since = 0;

	if (r->draining || !cut)
		return;
	r->draining = true;
	r->cur = g;
	while (shmring__consume_to(&g->ring, cut, take, a),
	       shmring__taken(&g->ring) < cut && !g->stall_at) {
		if (!since)
			since = now_monotonic_ns();
		else if (now_monotonic_ns() - since > CUT_WAIT_NS)
			break;
		sched_yield();
	}
	r->draining = false;
}

void recording__drain_to(struct agent *a, pid_t pid, uint64_t cut)
{
	struct ring *g = cut ? ring_of(a, pid) : NULL;

	if (g)
		drain_ring_to(a, g, cut);
}

void recording__drain_reserved(struct agent *a)
{
	struct recording *r = a->rec;
	int i;

	for (i = 0; r && i < r->nrings; i++)
		if (r->rings[i].ring.hdr)
			drain_ring_to(
				a, &r->rings[i],
				__atomic_load_n(&r->rings[i].ring.hdr->reserved,
						__ATOMIC_ACQUIRE));
}

uint64_t recording__dropped(const struct agent *a)
{
	const struct recording *r = a->rec;
	uint64_t n;
	int i;

	if (!r)
		return 0;
	n = r->stale + r->closed_dropped;
	for (i = 0; i < r->nrings; i++)
		if (r->rings[i].ring.hdr)
			n += __atomic_load_n(&r->rings[i].ring.hdr->dropped,
					     __ATOMIC_RELAXED);
	return n;
}
