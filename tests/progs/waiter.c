// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * For attach-by-pid tests: started untraced, it allocates 5000 bytes
 * (before_attach, never seen by the agent), says "ready", and waits for a
 * line on stdin. Then big_alloc makes three 300000-byte blocks (above the
 * mmap threshold: glibc maps them itself, which must not count twice),
 * frees one, frees the pre-attach block (an unknown free), says "done" and
 * waits for another line before exiting.
 * Peak after attach: 900000; live at the end: 600000.
 */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void *before_attach(void)
{
	return malloc(5000);
}

__attribute__((noinline)) void *big_alloc(void)
{
	return malloc(300000);
}

static void wait_line(void)
{
	char buf[64];

	if (!fgets(buf, sizeof(buf), stdin))
		exit(0);
}

int main(void)
{
	void *early = before_attach(), *b[3];
	int i;

	printf("ready\n");
	fflush(stdout);
	wait_line();
	for (i = 0; i < 3; i++)
		b[i] = big_alloc();
	free(b[0]);
	free(early);
	printf("done\n");
	fflush(stdout);
	wait_line();
	free(b[1]);
	free(b[2]);
	return 0;
}
