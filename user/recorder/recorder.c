// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The in-process recorder (issue 17, being built: docs/design/recorder.md),
 * built alone as build/libmemprof-recorder.so and loaded with LD_PRELOAD.
 * It interposes the malloc family and anonymous mmap/munmap/mremap, and
 * writes the records bpf/alloc.bpf.h writes (bpf/memprof.h) into the
 * shared-memory ring whose memfd MEMPROF_RECORDER_FD names
 * (recorder/shmring.c): no trap per allocation. With MEMPROF_RECORDER=wait
 * instead (a kernel started by `memprof-bpf kernelspec`'s spec), it makes
 * a ring of its own and records only while an agent has adopted it.
 * Without either, every call passes straight through.
 *
 * What the uprobes count, it counts: glibc calls malloc through its PLT
 * (strdup, fopen...: interposed, as the probes see them), but not mmap or
 * mremap from inside malloc (nested: the probes leave those out too).
 * A free is recorded before the block is freed, so that a malloc that
 * reuses it on another thread is always recorded after it. Nothing here
 * blocks or allocates: a full ring drops the record and counts it.
 * Python stacks come from pywalk.c, once the agent has configured it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "memprof.h"
#include "recorder/pywalk.h"
#include "recorder/shmring.h"

#define EXPORT __attribute__((visibility("default")))
#define TLS __attribute__((tls_model("initial-exec"))) __thread
#define SITE ((uint64_t)__builtin_return_address(0))
#define PAGE 4096ull
#define MMAPPED_CHUNK 0x2 /* glibc's IS_MMAPPED bit in a chunk's size */
#define BOOT_BYTES (64u << 10)
/* A ring made here (a kernel's: MEMPROF_RECORDER=wait), for an agent to
 * adopt: ~300,000 records between two of its reads, every 10 ms. */
#define WAIT_RING (16u << 20)

/* The real functions, found with dlsym(RTLD_NEXT) on first use. */
static struct {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*reallocarray)(void *, size_t, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	int (*munmap)(void *, size_t);
	void *(*mremap)(void *, size_t, size_t, int, ...);
} real;

static struct shmring ring;
static bool recording;
static uint32_t pid;
static TLS uint32_t tid;
/*
 * Inside one of our calls on this thread: a call it makes through the
 * PLT (glibc's reallocarray calls realloc) is nested, and the outer call
 * accounts for the bytes, as the probes' nesting rule has it.
 */
static TLS int depth;

/* dlsym may allocate while the real functions are being found. */
static unsigned char boot[BOOT_BYTES] __attribute__((aligned(64)));
static size_t boot_used;
static bool resolving;

static void *boot_alloc(size_t size)
{
	size_t at = (boot_used + 63) & ~(size_t)63;

	if (at + size > sizeof(boot))
		return NULL;
	boot_used = at + size;
	return boot + at;
}

static bool from_boot(const void *p)
{
	return (const unsigned char *)p >= boot &&
	       (const unsigned char *)p < boot + sizeof(boot);
}

/* Find the real functions, once (the first call may come early). */
static void resolve(void)
{
	if (real.malloc || resolving)
		return;
	resolving = true;
	real.free = dlsym(RTLD_NEXT, "free");
	real.calloc = dlsym(RTLD_NEXT, "calloc");
	real.realloc = dlsym(RTLD_NEXT, "realloc");
	real.reallocarray = dlsym(RTLD_NEXT, "reallocarray");
	real.posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
	real.aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
	real.memalign = dlsym(RTLD_NEXT, "memalign");
	real.valloc = dlsym(RTLD_NEXT, "valloc");
	real.pvalloc = dlsym(RTLD_NEXT, "pvalloc");
	real.mmap = dlsym(RTLD_NEXT, "mmap");
	real.munmap = dlsym(RTLD_NEXT, "munmap");
	real.mremap = dlsym(RTLD_NEXT, "mremap");
	real.malloc = dlsym(RTLD_NEXT, "malloc");
	resolving = false;
}

/* A forked child records as itself, in the same ring (one per tree). */
static void after_fork(void)
{
	pid = (uint32_t)getpid();
	tid = 0;
	pywalk__after_fork();
}

static void *record(uint32_t type, uint32_t size);

/*
 * The image's first record, while an agent reads the ring: an exec keeps
 * the pid and (inherited) the ring, so the old image's records end here.
 * Written at start, before a second thread can exist.
 */
static void announce(void)
{
	struct rec_image *r = record(REC_IMAGE, sizeof(*r));

	if (!r)
		return;
	r->image = shmring__image();
	shmring__commit(&ring, r);
}

/*
 * The agent's ring, if it gave one; else recording stays off. Done at
 * the first call, which may come before the constructors (libc's own
 * start, other libraries' constructors), and again in the constructor.
 */
static void start(void)
{
	static bool started;
	const char *fd, *wait;

	if (started)
		return;
	started = true;
	resolve();
	pid = (uint32_t)getpid();
	fd = getenv("MEMPROF_RECORDER_FD");
	wait = getenv("MEMPROF_RECORDER");
	if (fd && *fd) {
		if (shmring__map(&ring, atoi(fd)))
			return;
	} else if (!wait || strcmp(wait, "wait") ||
		   shmring__create(&ring, WAIT_RING)) {
		return;
	}
	pthread_atfork(NULL, NULL, after_fork);
	recording = true;
	announce();
}

__attribute__((constructor)) static void on_load(void)
{
	start();
}

static uint32_t thread_id(void)
{
	if (!tid)
		tid = (uint32_t)syscall(SYS_gettid);
	return tid;
}

/* Room for a record of type; NULL when off or the ring is full. */
static void *record(uint32_t type, uint32_t size)
{
	struct rec_hdr *h;

	if (!recording) {
		if (!real.malloc || resolving || depth)
			return NULL;
		depth++; /* the ring's mapping calls mmap */
		start();
		depth--;
		if (!recording)
			return NULL;
	}
	if (!__atomic_load_n(&ring.hdr->consumer, __ATOMIC_RELAXED))
		return NULL; /* no agent reads it: wait, one load a call */
	h = shmring__reserve(&ring, size);
	if (h) {
		h->type = type;
		h->pid = pid;
	}
	return h;
}

/*
 * The thread's Python stack id, 0 if none. Walked before the record is
 * reserved: the stack's own records must come first in the ring.
 */
static uint64_t py_stack(void)
{
	return recording ? pywalk__stack(&ring, pid, thread_id()) : 0;
}

static void alloc_done(uint32_t fn, void *addr, uint64_t size, uint64_t site)
{
	struct rec_alloc *r;
	uint64_t stack;

	if (!addr)
		return;
	stack = py_stack();
	if (!(r = record(REC_ALLOC, sizeof(*r))))
		return;
	r->tid = thread_id();
	r->fn = fn;
	r->addr = (uint64_t)addr;
	r->size = size;
	r->site = site;
	r->stack = stack;
	shmring__commit(&ring, r);
}

/* Before the block goes: a malloc reusing it is recorded after this. */
static void free_before(void *addr)
{
	struct rec_free *r;

	if (!addr || !(r = record(REC_FREE, sizeof(*r))))
		return;
	r->addr = (uint64_t)addr;
	shmring__commit(&ring, r);
}

/* glibc's chunk header: was this block mmapped on its own? */
static bool mmapped_chunk(const void *p)
{
	return p && (((const size_t *)p)[-1] & MMAPPED_CHUNK);
}

static void realloc_done(uint32_t fn, void *old, void *addr, uint64_t size,
			 bool remapped, uint64_t site)
{
	struct rec_realloc *r;
	uint64_t stack;

	if (!addr && size)
		return; /* failed: the old block is untouched */
	stack = py_stack();
	if (!(r = record(REC_REALLOC, sizeof(*r))))
		return;
	r->tid = thread_id();
	r->fn = (uint16_t)fn;
	r->flags = remapped ? REALLOC_REMAPPED : 0;
	r->old_addr = (uint64_t)old;
	r->new_addr = (uint64_t)addr;
	r->size = size;
	r->site = site;
	r->stack = stack;
	shmring__commit(&ring, r);
}

static uint64_t page_up(uint64_t len)
{
	return (len + PAGE - 1) & ~(PAGE - 1);
}

/* ---- the malloc family ----------------------------------------------------- */

EXPORT void *malloc(size_t size)
{
	void *p;

	if (!real.malloc) {
		resolve();
		if (!real.malloc)
			return boot_alloc(size);
	}
	if (depth)
		return real.malloc(size);
	depth++;
	p = real.malloc(size);
	depth--;
	alloc_done(FN_MALLOC, p, size, SITE);
	return p;
}

EXPORT void free(void *p)
{
	if (!p || from_boot(p))
		return;
	if (!real.free)
		resolve();
	if (!depth)
		free_before(p);
	real.free(p);
}

EXPORT void *calloc(size_t n, size_t size)
{
	uint64_t total = 0;
	void *p;

	if (!real.calloc) {
		resolve();
		if (!real.calloc) { /* dlsym's own calloc: zeroed static */
			if (__builtin_mul_overflow(n, size, &total))
				return NULL;
			return boot_alloc(total);
		}
	}
	if (depth)
		return real.calloc(n, size);
	depth++;
	p = real.calloc(n, size);
	depth--;
	if (__builtin_mul_overflow(n, size, &total))
		total = 0;
	alloc_done(FN_CALLOC, p, total, SITE);
	return p;
}

EXPORT void *realloc(void *old, size_t size)
{
	bool was_mmapped;
	void *p;

	if (from_boot(old)) { /* out of the boot buffer: copy it out */
		size_t left = (size_t)(boot + sizeof(boot) -
				       (const unsigned char *)old);

		p = malloc(size);
		if (p)
			memcpy(p, old, size < left ? size : left);
		return p;
	}
	resolve();
	if (depth)
		return real.realloc(old, size);
	was_mmapped = mmapped_chunk(old);
	depth++;
	p = real.realloc(old, size);
	depth--;
	realloc_done(FN_REALLOC, old, p, size,
		     was_mmapped && p != old && mmapped_chunk(p), SITE);
	return p;
}

EXPORT void *reallocarray(void *old, size_t n, size_t size)
{
	uint64_t total;
	bool was_mmapped;
	void *p;

	resolve();
	if (__builtin_mul_overflow(n, size, &total))
		total = ~0ull; /* fails with ENOMEM, block untouched */
	if (depth)
		return real.reallocarray(old, n, size);
	was_mmapped = mmapped_chunk(old);
	depth++;
	p = real.reallocarray(old, n, size);
	depth--;
	realloc_done(FN_REALLOCARRAY, old, p, total,
		     was_mmapped && p != old && mmapped_chunk(p), SITE);
	return p;
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	int err;

	resolve();
	if (depth)
		return real.posix_memalign(out, align, size);
	depth++;
	err = real.posix_memalign(out, align, size);
	depth--;
	if (!err)
		alloc_done(FN_POSIX_MEMALIGN, *out, size, SITE);
	return err;
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
	void *p;

	resolve();
	if (depth)
		return real.aligned_alloc(align, size);
	depth++;
	p = real.aligned_alloc(align, size);
	depth--;
	alloc_done(FN_ALIGNED_ALLOC, p, size, SITE);
	return p;
}

EXPORT void *memalign(size_t align, size_t size)
{
	void *p;

	resolve();
	if (depth)
		return real.memalign(align, size);
	depth++;
	p = real.memalign(align, size);
	depth--;
	alloc_done(FN_MEMALIGN, p, size, SITE);
	return p;
}

EXPORT void *valloc(size_t size)
{
	void *p;

	resolve();
	if (depth)
		return real.valloc(size);
	depth++;
	p = real.valloc(size);
	depth--;
	alloc_done(FN_VALLOC, p, size, SITE);
	return p;
}

/* pvalloc hands out whole pages: the caller owns the rounded size. */
EXPORT void *pvalloc(size_t size)
{
	void *p;

	resolve();
	if (depth)
		return real.pvalloc(size);
	depth++;
	p = real.pvalloc(size);
	depth--;
	alloc_done(FN_PVALLOC, p, page_up(size), SITE);
	return p;
}

/* ---- anonymous mappings ---------------------------------------------------- */

/* Heap: anonymous, not a thread stack, not a PROT_NONE reservation. */
static bool heap_mapping(int prot, int flags)
{
	return (flags & MAP_ANONYMOUS) && !(flags & MAP_STACK) && prot;
}

static void *mapped(void *addr, size_t len, int prot, int flags, int fd,
		    off_t off, uint64_t site)
{
	struct rec_mmap *r;
	uint64_t stack;
	void *p;

	resolve();
	if (depth)
		return real.mmap(addr, len, prot, flags, fd, off);
	depth++;
	p = real.mmap(addr, len, prot, flags, fd, off);
	depth--;
	if (p == MAP_FAILED || !heap_mapping(prot, flags))
		return p;
	stack = py_stack();
	if (!(r = record(REC_MMAP, sizeof(*r))))
		return p;
	r->addr = (uint64_t)p;
	r->len = page_up(len);
	r->site = site;
	r->stack = stack;
	shmring__commit(&ring, r);
	return p;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off)
{
	return mapped(addr, len, prot, flags, fd, off, SITE);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
		    off_t off)
{
	return mapped(addr, len, prot, flags, fd, off, SITE);
}

EXPORT int munmap(void *addr, size_t len)
{
	struct rec_munmap *r;

	resolve();
	if (!depth && (r = record(REC_MUNMAP, sizeof(*r)))) {
		r->addr = (uint64_t)addr;
		r->len = page_up(len);
		shmring__commit(&ring, r);
	}
	return real.munmap(addr, len);
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *want = NULL, *p;
	struct rec_mremap *r;
	va_list ap;

	resolve();
	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		want = va_arg(ap, void *);
		va_end(ap);
	}
	if (depth)
		return real.mremap(old, old_len, new_len, flags, want);
	depth++;
	p = real.mremap(old, old_len, new_len, flags, want);
	depth--;
	if (p == MAP_FAILED || !(r = record(REC_MREMAP, sizeof(*r))))
		return p;
	r->old_addr = (uint64_t)old;
	r->old_len = page_up(old_len);
	r->new_addr = (uint64_t)p;
	r->new_len = page_up(new_len);
	r->site = SITE;
	shmring__commit(&ring, r);
	return p;
}
