// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * realloc growth and mapping moves.
 * grow(): realloc from NULL by doubling 16 B -> 1 MiB (crossing the mmap
 *   threshold, where glibc's own mmap/mremap must not count), then shrink
 *   to 1000 and free with realloc(p, 0): nothing left at the end.
 * remap(): mmap 8 pages, mremap to 16 pages (may move), munmap the first
 *   4: 12 pages = 49152 bytes live at remap_site; peak there 65536.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

__attribute__((noinline)) void *grow_step(void *p, size_t n)
{
	return realloc(p, n);
}

static void grow(void)
{
	void *p = NULL;
	size_t n;

	for (n = 16; n <= (1 << 20); n *= 2)
		p = grow_step(p, n);
	p = grow_step(p, 1000);
	p = grow_step(p, 0);
	if (p)
		free(p);
}

__attribute__((noinline)) void *remap_site(void)
{
	return mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void *remap(void)
{
	char *p = remap_site();

	p = mremap(p, 8 * 4096, 16 * 4096, MREMAP_MAYMOVE);
	munmap(p, 4 * 4096);
	return p + 4 * 4096;
}

int main(void)
{
	grow();
	if (remap() == MAP_FAILED)
		return 1;
	puts("done");
	return 0;
}
