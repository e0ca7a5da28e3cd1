// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Every allocator entry point once, with sizes known in advance. The peak
 * is reached just before the frees; tests/integration asserts each site.
 *   live at peak: 1000 + 2000 + 3000 (realloc'd from 100) + 4096 (memalign)
 *     + 5000 (posix_memalign) + 6000 (aligned_alloc) + 7000 (valloc)
 *     + 8192 (pvalloc of 5000) + 1500 (reallocarray 3 x 500)
 *     + 65536 (mmap) = 103324 bytes; then munmap of half of the mapping.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void *keep[16];

__attribute__((noinline)) void *do_malloc(void)
{
	return malloc(1000);
}

__attribute__((noinline)) void *do_calloc(void)
{
	return calloc(20, 100);
}

__attribute__((noinline)) void *do_realloc(void)
{
	void *p = malloc(100);

	return realloc(p, 3000);
}

__attribute__((noinline)) void *do_memalign(void)
{
	return memalign(64, 4096);
}

__attribute__((noinline)) void *do_posix_memalign(void)
{
	void *p = NULL;

	if (posix_memalign(&p, 128, 5000))
		return NULL;
	return p;
}

__attribute__((noinline)) void *do_aligned_alloc(void)
{
	return aligned_alloc(256, 6000);
}

__attribute__((noinline)) void *do_valloc(void)
{
	return valloc(7000);
}

__attribute__((noinline)) void *do_pvalloc(void)
{
	return pvalloc(5000);
}

__attribute__((noinline)) void *do_reallocarray(void)
{
	return reallocarray(NULL, 3, 500);
}

__attribute__((noinline)) void *do_mmap(void)
{
	void *p = mmap(NULL, 65536, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

__attribute__((noinline)) void *do_fail(void)
{
	return malloc((size_t)1 << 62); /* fails: must not count */
}

int main(void)
{
	int i;

	keep[0] = do_malloc();
	keep[1] = do_calloc();
	keep[2] = do_realloc();
	keep[3] = do_memalign();
	keep[4] = do_posix_memalign();
	keep[5] = do_aligned_alloc();
	keep[6] = do_valloc();
	keep[7] = do_pvalloc();
	keep[8] = do_reallocarray();
	keep[9] = do_mmap();
	keep[10] = do_fail();
	free(NULL);
	for (i = 0; i < 9; i++)
		free(keep[i]);
	munmap((char *)keep[9] + 32768, 32768); /* partial: 32 KiB stay */
	printf("done\n");
	return 0;
}
