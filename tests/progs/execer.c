// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * exec: before exec the program holds 123456 bytes (before_exec); the
 * exec'd image (same binary, argument "after") holds 77777 bytes from
 * after_exec at its peak. The old image's blocks died with it, so the
 * snapshot must show 77777 and nothing from before_exec.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) void *before_exec(void)
{
	return malloc(123456);
}

__attribute__((noinline)) void *after_exec(void)
{
	return malloc(77777);
}

int main(int argc, char **argv)
{
	void *p;

	if (argc > 1 && strcmp(argv[1], "after") == 0) {
		p = after_exec();
		free(p);
		usleep(300 * 1000); /* names are read while the process lives */
		return 0;
	}
	p = before_exec();
	execl("/proc/self/exe", argv[0], "after", (char *)NULL);
	free(p);
	return 1;
}
