// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The census's floor (scripts/bench-census): copying a process's [heap]
 * out of it with process_vm_readv in 1 MiB reads, and nothing else. The
 * census reads that much and walks it; the ratio of the two is what the
 * walk costs above the copy, whatever the machine's memory speed.
 * Prints "copy SECONDS BYTES". For a heap whose pages are all present
 * (bigheap): reading an absent page would fault it in.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#define CHUNK (1 << 20)

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* [heap]'s bounds from /proc/PID/maps; 0 or -1. */
static int heap_of(int pid, uint64_t *lo, uint64_t *hi)
{
	char path[64], line[512];
	FILE *f;
	int found = -1;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (found && fgets(line, sizeof(line), f))
		if (strstr(line, "[heap]") &&
		    sscanf(line, "%lx-%lx", lo, hi) == 2)
			found = 0;
	fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	uint64_t lo, hi, a, total = 0;
	char *buf = malloc(CHUNK);
	double t0;
	int pid;

	if (argc != 2 || !buf || (pid = atoi(argv[1])) <= 0 ||
	    heap_of(pid, &lo, &hi)) {
		fprintf(stderr, "usage: copyfloor PID (a process with a "
				"[heap])\n");
		return 2;
	}
	t0 = now();
	for (a = lo; a < hi; a += CHUNK) {
		size_t len = hi - a < CHUNK ? hi - a : CHUNK;
		struct iovec l = { buf, len }, r = { (void *)a, len };
		ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);

		if (n <= 0)
			break;
		total += n;
	}
	printf("copy %.6f %llu\n", now() - t0, (unsigned long long)total);
	return 0;
}
