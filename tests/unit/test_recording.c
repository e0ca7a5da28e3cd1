// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include "agent.h"
#include "memprof.h"
#include "procs/tracee.h"
#include "recorder/recording.h"
#include "recorder/shmring.h"
#include "unit.h"

/*
 * The agent's side of the in-process recorder: records a process wrote
 * into the command's ring reach its heap in order, and those of a new
 * image wait until its exec is handled.
 */

#define GONE_PID 999998 /* no such process: nothing read from /proc */
#define OLD_IMAGE 0x1111111111111111ULL
#define NEW_IMAGE 0x2222222222222222ULL

struct fixture {
	struct agent a;
	char *argv[2];
	struct shmring w; /* the writer's view: what the command maps */
	struct tracee *t;
};

/* An agent with the command's ring, and the command's own mapping of it. */
static void setup(struct fixture *f)
{
	char so[] = "/tmp/memprof-test-recorder-XXXXXX";
	int fd = mkstemp(so);
	const char *ring_fd;

	cr_assert_geq(fd, 0);
	close(fd);
	setenv("MEMPROF_BPF_RECORDER", so, 1); /* only its path is needed */
	f->argv[0] = "true";
	f->a.env.recorder = true;
	f->a.env.command = f->argv;
	cr_assert_eq(recording__start(&f->a), 0);
	unlink(so);
	recording__before_launch(&f->a);
	ring_fd = getenv("MEMPROF_RECORDER_FD");
	cr_assert_not_null(ring_fd);
	cr_assert_eq(shmring__map(&f->w, atoi(ring_fd)), 0);
	recording__after_launch(&f->a);
	f->t = tracee__new(GONE_PID, false);
	cr_assert_not_null(f->t);
	cr_assert_eq(tracees__add(&f->a.procs, f->t), 0);
	f->t->recorder = true;
	f->t->image = OLD_IMAGE;
}

static void teardown(struct fixture *f)
{
	shmring__close(&f->w);
	recording__stop(&f->a);
	tracees__free(&f->a.procs);
}

/* One malloc of size at addr, as the recorder writes it. */
static void write_alloc(struct shmring *w, uint64_t addr, uint64_t size)
{
	struct rec_alloc *r = shmring__reserve(w, sizeof(*r));

	cr_assert_not_null(r);
	r->hdr.type = REC_ALLOC;
	r->hdr.pid = GONE_PID;
	r->fn = FN_MALLOC;
	r->addr = addr;
	r->size = size;
	r->site = 0x401000;
	shmring__commit(w, r);
}

static void write_image(struct shmring *w, uint64_t image)
{
	struct rec_image *r = shmring__reserve(w, sizeof(*r));

	cr_assert_not_null(r);
	r->hdr.type = REC_IMAGE;
	r->hdr.pid = GONE_PID;
	r->image = image;
	shmring__commit(w, r);
}

Test(recording, records_reach_the_heap_in_order, .timeout = 10)
{
	struct fixture f = { 0 };

	setup(&f);
	write_image(&f.w, OLD_IMAGE); /* its own image: nothing to wait for */
	write_alloc(&f.w, 0x10000, 100);
	write_alloc(&f.w, 0x20000, 200);
	recording__drain(&f.a);
	cr_assert_eq(f.t->heap.live_bytes, 300);
	cr_assert_eq(f.t->heap.live_count, 2);
	cr_assert_eq(recording__dropped(&f.a), 0);
	teardown(&f);
}

/*
 * The CI race behind this: the exec'd image allocated, a tick drained
 * its records into the old image's heap, and the exec record read next
 * wiped them with it.
 */
Test(recording, a_new_image_waits_for_its_exec, .timeout = 10)
{
	struct fixture f = { 0 };

	setup(&f);
	write_alloc(&f.w, 0x10000, 123456); /* the old image's */
	write_image(&f.w, NEW_IMAGE);
	write_alloc(&f.w, 0x20000, 77777); /* the new image's */
	recording__drain(&f.a);
	cr_assert_eq(f.t->heap.live_bytes, 123456, "stops at the new image");
	recording__drain(&f.a);
	cr_assert_eq(f.t->heap.live_bytes, 123456, "still waiting");

	/* What session__on_exec does with the exec record's image. */
	heap__reset(&f.t->heap);
	f.t->image = NEW_IMAGE;
	recording__drain(&f.a);
	cr_assert_eq(f.t->heap.live_bytes, 77777);
	cr_assert_eq(f.t->heap.live_count, 1);
	teardown(&f);
}

/* Its exec record lost (a full BPF ring): the image is taken as it says. */
Test(recording, an_image_whose_exec_never_came_is_taken, .timeout = 10)
{
	struct fixture f = { 0 };

	setup(&f);
	write_image(&f.w, NEW_IMAGE);
	write_alloc(&f.w, 0x20000, 4096);
	recording__drain(&f.a);
	cr_assert_eq(f.t->heap.live_bytes, 0);
	usleep(600 * 1000); /* past the wait (STALL_NS, 0.5 s) */
	recording__drain(&f.a);
	cr_assert_eq(f.t->heap.live_bytes, 4096);
	cr_assert_eq(f.t->image, NEW_IMAGE);
	cr_assert_eq(recording__dropped(&f.a), 0, "nothing lost");
	teardown(&f);
}

/* A record of a process the agent never learns of is dropped, counted. */
Test(recording, a_record_of_an_unknown_process_is_dropped, .timeout = 10)
{
	struct fixture f = { 0 };
	struct rec_alloc *r;

	setup(&f);
	r = shmring__reserve(&f.w, sizeof(*r));
	cr_assert_not_null(r);
	r->hdr.type = REC_ALLOC;
	r->hdr.pid = GONE_PID + 1;
	r->size = 10;
	shmring__commit(&f.w, r);
	write_alloc(&f.w, 0x20000, 50);
	recording__drain(&f.a);
	cr_assert_eq(f.t->heap.live_bytes, 0, "waits for its fork record");
	usleep(600 * 1000);
	recording__drain(&f.a);
	cr_assert_eq(f.t->heap.live_bytes, 50);
	cr_assert_eq(recording__dropped(&f.a), 1);
	teardown(&f);
}
