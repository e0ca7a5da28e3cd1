// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * An executable with an allocator of its own: malloc, free, calloc and
 * realloc are defined here (a bump allocator on one anonymous mapping;
 * free forgets nothing), so glibc's heap is never used and the census at
 * attach (issue 14) finds no glibc arena. The dynamic linker binds libc's
 * own calls to these too.
 *
 * Before attach: 100 blocks of 10000 bytes (before_attach). It prints
 * "ready" and waits for a line on stdin; then after_attach() allocates 7
 * blocks of 123456 bytes and frees 2 of them, it prints "done" and waits
 * for another line before exiting. Live after attach: 5 x 123456.
 * Output is write(2) only.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define POOL (64UL << 20)
#define HDR 16 /* the block's size, keeping 16-byte alignment */

static char *pool, *next;

void *malloc(size_t n)
{
	char *p;

	if (!pool) {
		pool = mmap(NULL, POOL, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (pool == MAP_FAILED)
			_exit(99);
		next = pool;
	}
	n = (n + 15) & ~15UL;
	if ((size_t)(pool + POOL - next) < n + HDR)
		return NULL;
	p = next;
	*(size_t *)p = n;
	next += n + HDR;
	return p + HDR;
}

void free(void *p)
{
	(void)p;
}

void *calloc(size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	p = malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void *realloc(void *old, size_t n)
{
	void *p = malloc(n);
	size_t had;

	if (p && old) {
		had = *(size_t *)((char *)old - HDR);
		memcpy(p, old, had < n ? had : n);
	}
	return p;
}

__attribute__((noinline)) void *before_attach(void)
{
	void *p = malloc(10000);

	memset(p, 0x5a, 10000);
	return p;
}

__attribute__((noinline)) void *after_attach(void)
{
	void *p = malloc(123456);

	memset(p, 0x5b, 123456);
	return p;
}

static void say(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		_exit(98);
}

static void wait_line(void)
{
	char c;

	do {
		if (read(0, &c, 1) != 1)
			_exit(0);
	} while (c != '\n');
}

int main(void)
{
	static void *early[100], *late[7];
	int i;

	for (i = 0; i < 100; i++)
		early[i] = before_attach();
	say("ready\n");
	wait_line();
	for (i = 0; i < 7; i++)
		late[i] = after_attach();
	free(late[0]);
	free(late[3]);
	say("done\n");
	wait_line();
	return early[99] && late[6] ? 0 : 1;
}
