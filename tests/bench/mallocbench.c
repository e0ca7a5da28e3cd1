// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * malloc/free microbenchmark: the workload every tracer is compared on.
 *
 *   mallocbench [-t THREADS] [-w WORKING_SET] [-p] [-e] ITERATIONS
 *
 * Each thread runs ITERATIONS malloc+free pairs with sizes cycling through
 * 64..320 bytes. Without -w a block is freed right after it is allocated
 * (the allocator's fast path every time). With -w N each thread first fills
 * N slots, then every iteration frees a pseudo-randomly chosen slot and
 * refills it, so N blocks stay live and the allocator works on a real heap.
 * -p waits for SIGUSR1 before the timed loop, so a
 * tracer that attaches to a running pid (bcc memleak -p) can get ready;
 * -e waits for SIGUSR1 again after printing its line, so a reader of the
 * tracer's counters (scripts/bench-pywalk) can take them over the loop.
 *
 * Only the loop is timed (CLOCK_MONOTONIC), never process start-up, probe
 * attach, the working-set fill or a short warm-up. Output, one line:
 *   mallocbench: threads=T iters=N ws=W ns_per_pair=X wall_s=Y pairs_per_s=Z
 * where ns_per_pair is the mean over threads of (thread loop time / N).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "lib/clock.h"

#define MAX_THREADS 64
#define WARMUP 1000

struct worker {
	pthread_t thread;
	long iters;
	long ws;
	unsigned seed;
	pthread_barrier_t *start;
	double ns; /* loop time */
	int err;
};

/* Sizes 64, 96, ..., 320: small enough for tcache and fastbins. */
static inline size_t size_at(long i)
{
	return 64 + (size_t)(i % 9) * 32;
}

/*
 * Touch the block and let it escape into an asm statement: otherwise
 * GCC is allowed to delete a malloc whose result is only freed.
 */
static inline void use(void *p)
{
	*(volatile char *)p = 1;
	__asm__ volatile("" : : "r"(p) : "memory");
}

/* Allocate-then-free at once: the allocator's fastest path. */
static int loop_pairs(long iters)
{
	long i;

	for (i = 0; i < iters; i++) {
		void *p = malloc(size_at(i));

		if (!p)
			return -ENOMEM;
		use(p);
		free(p);
	}
	return 0;
}

/* xorshift32: cheap, deterministic slot choice without libc's rand lock. */
static inline unsigned next_rand(unsigned *s)
{
	unsigned x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* Replace a random live block each iteration: a steady-state heap. */
static int loop_working_set(void **slots, long ws, long iters, unsigned *seed)
{
	long i;

	for (i = 0; i < iters; i++) {
		long k = next_rand(seed) % ws;

		free(slots[k]);
		slots[k] = malloc(size_at(i));
		if (!slots[k])
			return -ENOMEM;
		use(slots[k]);
	}
	return 0;
}

/* One thread: fill, warm up, wait for the others, then the timed loop. */
static void *run_worker(void *arg)
{
	struct worker *w = arg;
	void **slots = NULL;
	uint64_t t0;
	long i;

	if (w->ws) {
		slots = calloc(w->ws, sizeof(*slots));
		if (!slots) {
			w->err = -ENOMEM;
			return NULL;
		}
		for (i = 0; i < w->ws; i++) {
			slots[i] = malloc(size_at(i));
			if (!slots[i]) {
				w->err = -ENOMEM;
				return NULL;
			}
			use(slots[i]);
		}
		w->err = loop_working_set(slots, w->ws, WARMUP, &w->seed);
	} else {
		w->err = loop_pairs(WARMUP);
	}
	pthread_barrier_wait(w->start);
	t0 = now_monotonic_ns();
	if (!w->err && w->ws)
		w->err = loop_working_set(slots, w->ws, w->iters, &w->seed);
	else if (!w->err)
		w->err = loop_pairs(w->iters);
	w->ns = now_monotonic_ns() - t0;
	if (slots) {
		for (i = 0; i < w->ws; i++)
			free(slots[i]);
		free(slots);
	}
	return NULL;
}

/*
 * -p and -e: block until SIGUSR1 says the tracer is attached (or its
 * counters are read). The signal is blocked first, so one sent before
 * sigwait() is not lost.
 */
static void wait_for_go(void)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("mallocbench: pid %d waiting for SIGUSR1\n", getpid());
	fflush(stdout);
	sigwait(&set, &sig);
}

/* Bad arguments: say how to call it and exit 2. */
static void usage(void)
{
	fprintf(stderr, "usage: mallocbench [-t THREADS] [-w WORKING_SET] [-p] [-e] "
			"ITERATIONS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct worker w[MAX_THREADS];
	pthread_barrier_t start;
	long threads = 1, ws = 0, iters;
	int c, i, pause_first = 0, pause_last = 0;
	double sum = 0;
	uint64_t t0, wall;

	while ((c = getopt(argc, argv, "t:w:pe")) != -1) {
		switch (c) {
		case 't':
			threads = strtol(optarg, NULL, 10);
			break;
		case 'w':
			ws = strtol(optarg, NULL, 10);
			break;
		case 'p':
			pause_first = 1;
			break;
		case 'e':
			pause_last = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || threads < 1 || threads > MAX_THREADS ||
	    ws < 0)
		usage();
	iters = strtol(argv[optind], NULL, 10);
	if (iters < 1)
		usage();
	if (pause_first)
		wait_for_go();
	pthread_barrier_init(&start, NULL, threads + 1);
	memset(w, 0, sizeof(w));
	for (i = 0; i < threads; i++) {
		w[i].iters = iters;
		w[i].ws = ws;
		w[i].seed = 2463534242u + i;
		w[i].start = &start;
		if (pthread_create(&w[i].thread, NULL, run_worker, &w[i])) {
			perror("mallocbench: pthread_create");
			return 1;
		}
	}
	pthread_barrier_wait(&start);
	t0 = now_monotonic_ns();
	for (i = 0; i < threads; i++)
		pthread_join(w[i].thread, NULL);
	wall = now_monotonic_ns() - t0;
	for (i = 0; i < threads; i++) {
		if (w[i].err) {
			fprintf(stderr, "mallocbench: out of memory\n");
			return 1;
		}
		sum += w[i].ns / iters;
	}
	printf("mallocbench: threads=%ld iters=%ld ws=%ld ns_per_pair=%.2f "
	       "wall_s=%.4f pairs_per_s=%.0f\n",
	       threads, iters, ws, sum / threads, wall / 1e9,
	       threads * iters / (wall / 1e9));
	if (pause_last)
		wait_for_go();
	return 0;
}
