// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Eight threads, each mallocing and freeing 64 bytes N times (argv[1],
 * default 1,000,000): 8 N allocations in all, none live at the end. Then
 * it writes "done" to argv[2] when given (the test of an agent killed
 * mid-run waits for it).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 8

static long rounds = 1000000;

__attribute__((noinline)) static void *churn(void *arg)
{
	long i;

	for (i = 0; i < rounds; i++) {
		void *p = malloc(64);

		*(volatile char *)p = 1;
		free(p);
	}
	return arg;
}

int main(int argc, char **argv)
{
	pthread_t t[THREADS];
	FILE *f;
	int i;

	if (argc > 1)
		rounds = atol(argv[1]);
	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, churn, NULL);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	if (argc > 2 && (f = fopen(argv[2], "w"))) {
		fputs("done\n", f);
		fclose(f);
	}
	return 0;
}
