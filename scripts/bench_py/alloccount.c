/* LD_PRELOAD counter of malloc-family calls, for scripts/bench's Python
 * workloads: counts malloc, calloc, realloc, reallocarray, posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc (one "call" each) and free
 * (non-NULL), and forwards to glibc. A process reads the counts through
 * alloccount_calls()/alloccount_frees() (ctypes, see benchlib.py).
 * Build: gcc -O2 -shared -fPIC alloccount.c -o alloccount.so -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static uint64_t n_calls, n_frees;

#define COUNT(v) __atomic_fetch_add(&(v), 1, __ATOMIC_RELAXED)

unsigned long long alloccount_calls(void) { return __atomic_load_n(&n_calls, __ATOMIC_RELAXED); }
unsigned long long alloccount_frees(void) { return __atomic_load_n(&n_frees, __ATOMIC_RELAXED); }

void *malloc(size_t n)
{
	COUNT(n_calls);
	return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	COUNT(n_calls);
	return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
	COUNT(n_calls);
	return __libc_realloc(p, n);
}

void *reallocarray(void *p, size_t a, size_t b)
{
	size_t n;
	COUNT(n_calls);
	if (__builtin_mul_overflow(a, b, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, n);
}

void *memalign(size_t al, size_t n)
{
	COUNT(n_calls);
	return __libc_memalign(al, n);
}

void *aligned_alloc(size_t al, size_t n)
{
	COUNT(n_calls);
	return __libc_memalign(al, n);
}

int posix_memalign(void **out, size_t al, size_t n)
{
	void *p;
	COUNT(n_calls);
	if (al % sizeof(void *) || (al & (al - 1)) || !al)
		return EINVAL;
	p = __libc_memalign(al, n);
	if (!p && n)
		return ENOMEM;
	*out = p;
	return 0;
}

void *valloc(size_t n)
{
	COUNT(n_calls);
	return __libc_valloc(n);
}

void *pvalloc(size_t n)
{
	COUNT(n_calls);
	return __libc_pvalloc(n);
}

void free(void *p)
{
	if (p)
		COUNT(n_frees);
	__libc_free(p);
}
