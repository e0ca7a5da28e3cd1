// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Four threads allocate at the same time: thread i makes 100 blocks of
 * (i + 1) * 1000 bytes from its own function. All blocks are live together
 * (a barrier) before any is freed: peak = 100 * (1+2+3+4) * 1000 = 1000000.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NTHREADS 4
#define NBLOCKS 100

static pthread_barrier_t all_allocated;

static void hold(size_t size)
{
	void *blocks[NBLOCKS];
	int i;

	for (i = 0; i < NBLOCKS; i++)
		blocks[i] = malloc(size);
	pthread_barrier_wait(&all_allocated);
	pthread_barrier_wait(&all_allocated);
	for (i = 0; i < NBLOCKS; i++)
		free(blocks[i]);
}

__attribute__((noinline)) void *worker1(void *arg)
{
	(void)arg;
	hold(1000);
	return NULL;
}

__attribute__((noinline)) void *worker2(void *arg)
{
	(void)arg;
	hold(2000);
	return NULL;
}

__attribute__((noinline)) void *worker3(void *arg)
{
	(void)arg;
	hold(3000);
	return NULL;
}

__attribute__((noinline)) void *worker4(void *arg)
{
	(void)arg;
	hold(4000);
	return NULL;
}

int main(void)
{
	void *(*fns[NTHREADS])(void *) = { worker1, worker2, worker3, worker4 };
	pthread_t th[NTHREADS];
	int i;

	pthread_barrier_init(&all_allocated, NULL, NTHREADS + 1);
	for (i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, fns[i], NULL);
	pthread_barrier_wait(&all_allocated); /* all 400 blocks live */
	pthread_barrier_wait(&all_allocated);
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	puts("done");
	return 0;
}
