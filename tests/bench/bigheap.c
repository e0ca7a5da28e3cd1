// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A big glibc heap for the census at attach (issue 14):
 *
 *   bigheap [-n CHUNKS] [-g GIB] [-c]
 *
 * CHUNKS blocks (default 10,000,000) of 16 .. 2*mean-16 bytes, mean
 * GIB GiB / CHUNKS (default 10), written through, all in the main arena;
 * every 7th freed again. Then one line on stdout:
 *
 *   ready PID LIVE_CHUNKS LIVE_REQUESTED_BYTES LIVE_USABLE_BYTES
 *
 * and, without -c, it waits for a line on stdin (or its end) and exits.
 *
 * -c (churn): after "ready" it keeps replacing random blocks (free, then
 * malloc of the same size) in a tight loop and records the longest gap
 * between two iterations: what an outside reader costs the target. A
 * line "stall" on stdin prints "stall MAX_NS ITERATIONS" (since the last
 * "stall") and starts again; "exit" or the end of stdin exits.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint32_t rnd(uint32_t *r)
{
	*r = *r * 1103515245u + 12345u;
	return *r >> 8;
}

static volatile uint64_t max_gap, iterations;
static volatile int asked, quit;

/* stdin: "stall" asks for the figures, anything else (or EOF) quits. */
static void *commands(void *arg)
{
	char line[64];

	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "stall", 5))
			break;
		asked = 1;
		while (asked && !quit)
			usleep(1000);
	}
	quit = 1;
	return arg;
}

int main(int argc, char **argv)
{
	long n = 10000000, i, live = 0;
	double gib = 10;
	uint64_t req = 0, usable = 0, avg, last, t;
	uint32_t r = 1;
	void **v;
	pthread_t th;
	int c, churn = 0;

	while ((c = getopt(argc, argv, "n:g:c")) != -1) {
		if (c == 'n')
			n = atol(optarg);
		else if (c == 'g')
			gib = atof(optarg);
		else if (c == 'c')
			churn = 1;
		else
			return 2;
	}
	avg = (uint64_t)(gib * (1ULL << 30)) / (uint64_t)n;
	if (n <= 0 || avg < 24) {
		fprintf(stderr, "bigheap: a mean block of at least 24 bytes\n");
		return 2;
	}
	v = malloc((size_t)n * sizeof(*v)); /* mmapped: not in [heap] */
	if (!v)
		return 1;
	for (i = 0; i < n; i++) {
		size_t s = 16 + rnd(&r) % (2 * avg - 32);

		v[i] = malloc(s);
		if (!v[i])
			return 1;
		memset(v[i], 0x5a, s);
		if (i % 7) {
			req += s;
			usable += malloc_usable_size(v[i]);
			live++;
		}
	}
	for (i = 0; i < n; i += 7) {
		free(v[i]);
		v[i] = NULL;
	}
	printf("ready %d %ld %llu %llu\n", getpid(), live,
	       (unsigned long long)req, (unsigned long long)usable);
	fflush(stdout);
	if (!churn) {
		char line[64];

		if (!fgets(line, sizeof(line), stdin))
			return 0; /* its end: the same as a line */
		return 0;
	}
	pthread_create(&th, NULL, commands, NULL);
	last = now_ns();
	while (!quit) {
		long j = (long)(rnd(&r) % (uint64_t)n);
		size_t s;

		if (j % 7 == 0) /* freed already */
			continue;
		s = malloc_usable_size(v[j]); /* the same chunk size back */
		free(v[j]);
		v[j] = malloc(s);
		t = now_ns();
		if (t - last > max_gap)
			max_gap = t - last;
		last = t;
		iterations++;
		if (asked) {
			printf("stall %llu %llu\n", (unsigned long long)max_gap,
			       (unsigned long long)iterations);
			fflush(stdout);
			max_gap = iterations = 0;
			asked = 0;
			last = now_ns();
		}
	}
	pthread_join(th, NULL);
	return 0;
}
