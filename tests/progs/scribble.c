// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A corrupted heap for the census at attach (issue 14). Before attach:
 * 1000 blocks of 200 bytes in the main arena, the size field of the
 * 500th overwritten with 0x4141414141414141; a second thread's arena with
 * 1000 blocks of 1000 bytes, intact; a 1 MiB mmapped block, intact. It
 * prints "ready THREAD MMAPPED MAIN" (usable bytes of the thread's blocks,
 * of the mmapped block, of the main arena's blocks) and waits for a line
 * on stdin; then after_attach() allocates 5 blocks of 50000 bytes (from
 * the main arena's top, past the corrupted chunk), it prints "done" and
 * waits for another line before exiting.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 1000

static void *main_blocks[N], *thread_blocks[N];
static pthread_barrier_t bar;
static char outbuf[4096], inbuf[4096];

static void *thread_main(void *arg)
{
	int i;

	for (i = 0; i < N; i++) {
		thread_blocks[i] = malloc(1000);
		memset(thread_blocks[i], 0x33, 1000);
	}
	pthread_barrier_wait(&bar);
	for (;;)
		pause();
	return arg;
}

__attribute__((noinline)) void *after_attach(void)
{
	return malloc(50000);
}

static void wait_line(void)
{
	char buf[64];

	if (!fgets(buf, sizeof(buf), stdin))
		exit(0);
}

int main(void)
{
	size_t thread_usable = 0, main_usable = 0, mmapped_usable;
	void *big, *late[5];
	pthread_t t;
	int i;

	/* stdio's buffers out of the heap: no malloc after the scribble. */
	setvbuf(stdout, outbuf, _IOLBF, sizeof(outbuf));
	setvbuf(stdin, inbuf, _IOLBF, sizeof(inbuf));
	pthread_barrier_init(&bar, NULL, 2);
	pthread_create(&t, NULL, thread_main, NULL);
	pthread_barrier_wait(&bar);
	for (i = 0; i < N; i++) {
		main_blocks[i] = malloc(200);
		memset(main_blocks[i], 0x22, 200);
	}
	big = malloc(1 << 20);
	memset(big, 0x11, 4096);
	for (i = 0; i < N; i++) {
		thread_usable += malloc_usable_size(thread_blocks[i]);
		main_usable += malloc_usable_size(main_blocks[i]);
	}
	mmapped_usable = malloc_usable_size(big);
	/* A corrupted chunk header in the main arena. */
	*(volatile size_t *)((char *)main_blocks[500] - 8) =
		0x4141414141414141ul;
	printf("ready %zu %zu %zu\n", thread_usable, mmapped_usable,
	       main_usable);
	wait_line();
	for (i = 0; i < 5; i++)
		late[i] = after_attach();
	printf("done %p\n", late[4]);
	wait_line();
	return 0;
}
