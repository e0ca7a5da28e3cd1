// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The shared-memory record ring (user/recorder/shmring.c): order, the
 * doubled mapping across the end, drops when full, a second mapping of
 * the same memfd (the agent's side), a child process writing, and eight
 * threads writing a million records each while the reader runs.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "recorder/shmring.h"
#include "unit.h"

/* A test record: who wrote it and its number in that writer's order. */
struct rec {
	uint32_t writer, pad;
	uint64_t seq;
	unsigned char body[40]; /* the size of a rec_alloc, about */
};

#define WRITERS 8
#define PER_WRITER 1000000

struct seen {
	uint64_t n, bad;
	uint64_t next[WRITERS]; /* each writer's next seq not yet seen */
	uint64_t lost[WRITERS]; /* seqs skipped: dropped by a full ring */
};

/* Each writer's records arrive in its own order (some dropped). */
static bool check(const void *data, uint32_t len, void *ctx)
{
	const struct rec *r = data;
	struct seen *s = ctx;

	s->n++;
	if (len < sizeof(*r) || r->writer >= WRITERS ||
	    r->seq < s->next[r->writer]) {
		s->bad++;
		return true;
	}
	s->lost[r->writer] += r->seq - s->next[r->writer];
	s->next[r->writer] = r->seq + 1;
	return true;
}

static bool put(struct shmring *ring, uint32_t writer, uint64_t seq)
{
	struct rec *r = shmring__reserve(ring, sizeof(*r));

	if (!r)
		return false;
	r->writer = writer;
	r->seq = seq;
	memset(r->body, (int)seq, sizeof(r->body));
	shmring__commit(ring, r);
	return true;
}

Test(shmring, sizes_are_checked)
{
	struct shmring r;

	cr_assert_eq(shmring__create(&r, 1000), -EINVAL);
	cr_assert_eq(shmring__create(&r, SHMRING_MIN / 2), -EINVAL);
	cr_assert_eq(shmring__create(&r, SHMRING_MIN), 0);
	shmring__close(&r);
}

/* In order, across the end of the data many times over. */
Test(shmring, order_across_the_end)
{
	struct shmring r;
	struct seen s = { 0 };
	uint64_t i;

	cr_assert_eq(shmring__create(&r, SHMRING_MIN), 0);
	for (i = 0; i < 100000; i++) {
		cr_assert(put(&r, 0, i));
		if (i % 97 == 0)
			shmring__consume(&r, check, &s);
	}
	shmring__consume(&r, check, &s);
	cr_assert_eq(s.n, 100000);
	cr_assert_eq(s.bad, 0);
	cr_assert_eq(s.lost[0], 0);
	cr_assert_eq(r.hdr->dropped, 0);
	shmring__close(&r);
}

/* Full: records are dropped and counted, never waited for. */
Test(shmring, full_drops_and_counts)
{
	struct shmring r;
	struct seen s = { 0 };
	uint64_t i, fit = SHMRING_MIN / (sizeof(struct rec) + 8), put_n = 0;

	cr_assert_eq(shmring__create(&r, SHMRING_MIN), 0);
	for (i = 0; i < fit + 100; i++)
		put_n += put(&r, 0, i);
	cr_assert_eq(put_n, fit);
	cr_assert_eq(r.hdr->dropped, 100);
	cr_assert_eq(r.hdr->dropped_bytes, 100 * (sizeof(struct rec) + 8));
	cr_assert_eq(shmring__consume(&r, check, &s), fit);
	cr_assert(put(&r, 0, fit + 100)); /* room again */
	shmring__consume(&r, check, &s);
	cr_assert_eq(s.lost[0], 100);
	cr_assert_eq(s.bad, 0);
	shmring__close(&r);
}

/* A reserved record not yet committed stops the reader, in order. */
Test(shmring, uncommitted_stops_the_reader)
{
	struct shmring r;
	struct seen s = { 0 };
	struct rec *a, *b;

	cr_assert_eq(shmring__create(&r, SHMRING_MIN), 0);
	a = shmring__reserve(&r, sizeof(*a));
	b = shmring__reserve(&r, sizeof(*b));
	b->writer = 0, b->seq = 1;
	shmring__commit(&r, b);
	cr_assert_eq(shmring__consume(&r, check, &s), 0);
	a->writer = 0, a->seq = 0;
	shmring__commit(&r, a);
	cr_assert_eq(shmring__consume(&r, check, &s), 2);
	cr_assert_eq(s.lost[0], 0);
	shmring__close(&r);
}

/* A writer that died between reserve and commit: skipped, counted. */
Test(shmring, a_dead_writer_is_skipped)
{
	struct shmring r;
	struct seen s = { 0 };
	struct rec *b;

	cr_assert_eq(shmring__create(&r, SHMRING_MIN), 0);
	cr_assert_not(shmring__skip_head(&r)); /* nothing reserved */
	cr_assert_not_null(shmring__reserve(&r, sizeof(struct rec)));
	b = shmring__reserve(&r, sizeof(*b));
	b->writer = 0, b->seq = 1;
	shmring__commit(&r, b);
	cr_assert_eq(shmring__consume(&r, check, &s), 0);
	cr_assert(shmring__skip_head(&r));
	cr_assert_eq(r.hdr->dropped, 1);
	cr_assert_eq(shmring__consume(&r, check, &s), 1);
	cr_assert_eq(s.next[0], 2);
	cr_assert_not(shmring__skip_head(&r)); /* all taken */
	shmring__close(&r);
}

/* A child writes through the inherited memfd; the reader maps it anew. */
Test(shmring, another_process_writes)
{
	struct shmring w, r;
	struct seen s = { 0 };
	pid_t pid;
	int status;
	uint64_t i;

	cr_assert_eq(shmring__create(&w, 1 << 20), 0);
	pid = fork();
	if (pid == 0) {
		for (i = 0; i < 1000; i++)
			put(&w, 1, i);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(shmring__map(&r, dup(w.fd)), 0);
	cr_assert_eq(shmring__consume(&r, check, &s), 1000);
	cr_assert_eq(s.next[1], 1000);
	cr_assert_eq(w.hdr->taken, r.hdr->taken); /* one header */
	shmring__close(&r);
	shmring__close(&w);
}

/* A memfd that is no ring (or a torn header) is refused. */
Test(shmring, a_bad_header_is_refused)
{
	struct shmring w, r;
	int fd = memfd_create("not-a-ring", 0);

	cr_assert_eq(ftruncate(fd, SHMRING_HDR + SHMRING_MIN), 0);
	cr_assert_eq(shmring__map(&r, fd), -EPROTO);
	close(fd);
	cr_assert_eq(shmring__create(&w, SHMRING_MIN), 0);
	w.hdr->size = SHMRING_MIN * 2; /* says more than the file holds */
	cr_assert_eq(shmring__map(&r, dup(w.fd)), -EPROTO);
	shmring__close(&w);
}

struct writer_arg {
	struct shmring *ring;
	uint32_t id;
	uint64_t dropped;
};

static void *writer(void *p)
{
	struct writer_arg *a = p;
	uint64_t i;

	for (i = 0; i < PER_WRITER; i++)
		if (!put(a->ring, a->id, i))
			a->dropped++;
	return NULL;
}

/*
 * Eight threads, a million records each, the reader draining as they
 * go: every record arrives once, in its writer's order, or is counted
 * as dropped.
 */
Test(shmring, eight_writers_one_reader, .timeout = 120)
{
	struct writer_arg args[WRITERS];
	pthread_t t[WRITERS];
	struct shmring r;
	struct seen s = { 0 };
	uint64_t dropped = 0, lost = 0;
	bool joined[WRITERS] = { false };
	int i, running = WRITERS;

	cr_assert_eq(shmring__create(&r, 4 << 20), 0);
	for (i = 0; i < WRITERS; i++) {
		args[i] = (struct writer_arg){ .ring = &r, .id = (uint32_t)i };
		cr_assert_eq(pthread_create(&t[i], NULL, writer, &args[i]), 0);
	}
	while (running) {
		shmring__consume(&r, check, &s);
		for (i = 0; i < WRITERS; i++)
			if (!joined[i] && !pthread_tryjoin_np(t[i], NULL))
				joined[i] = true, running--;
	}
	shmring__consume(&r, check, &s);
	for (i = 0; i < WRITERS; i++) {
		dropped += args[i].dropped;
		lost += s.lost[i] + (PER_WRITER - s.next[i]);
	}
	cr_assert_eq(s.bad, 0);
	cr_assert_eq(s.n + dropped, (uint64_t)WRITERS * PER_WRITER);
	cr_assert_eq(lost, dropped);
	cr_assert_eq(r.hdr->dropped, dropped);
	shmring__close(&r);
}
