// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Fifty children at once: each keeps ten 1000-byte blocks from child_work,
 * then exits; the parent keeps 4096 bytes from parent_work and waits for
 * them all. Exit 0 when every child exited 0.
 */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILDREN 50

__attribute__((noinline)) static void child_work(void)
{
	void *keep[10];
	int i;

	for (i = 0; i < 10; i++)
		keep[i] = malloc(1000);
	(void)keep;
	_exit(0);
}

__attribute__((noinline)) static void *parent_work(void)
{
	return malloc(4096);
}

int main(void)
{
	void *mine = parent_work();
	int i, status, bad = 0;

	for (i = 0; i < CHILDREN; i++)
		if (fork() == 0)
			child_work();
	for (i = 0; i < CHILDREN; i++)
		if (wait(&status) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			bad++;
	free(mine);
	return bad ? 1 : 0;
}
