// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fork: the parent keeps 10000 bytes from parent_alloc, then forks. The
 * child waits for the agent to attach (it learns of the fork from the
 * sched_process_fork tracepoint), allocates 50000 bytes in child_alloc,
 * frees the inherited block and exits: child peak = 10000 + 50000.
 * The parent then allocates 20000 in parent_late: parent peak 30000.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) void *parent_alloc(void)
{
	return malloc(10000);
}

__attribute__((noinline)) void *child_alloc(void)
{
	return malloc(50000);
}

__attribute__((noinline)) void *parent_late(void)
{
	return malloc(20000);
}

int main(void)
{
	void *inherited = parent_alloc(), *late;
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		void *mine;

		usleep(500 * 1000); /* the agent attaches within this */
		mine = child_alloc();
		free(inherited);
		free(mine);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	late = parent_late();
	printf("child %d exited %d\n", pid, WEXITSTATUS(status));
	free(late);
	free(inherited);
	return 0;
}
