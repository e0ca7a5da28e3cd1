// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include "procs/elfsym.h"
#include "unit.h"

int memprof_test_target(int x);
int memprof_test_other(int x);

__attribute__((noinline, used)) int memprof_test_target(int x)
{
	volatile int v = x;

	return v * 3 + 1;
}

__attribute__((noinline, used)) int memprof_test_other(int x)
{
	volatile int v = x;

	return v * 5 + 2;
}

/* File offset of a runtime address in our own executable, from maps. */
static uint64_t self_offset(uintptr_t addr)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long long start, end, off;
	char line[512];
	uint64_t ret = UINT64_MAX;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx %*s %llx", &start, &end, &off) != 3)
			continue;
		if (addr >= start && addr < end) {
			ret = addr - start + off;
			break;
		}
	}
	fclose(f);
	cr_assert_neq(ret, UINT64_MAX, "0x%lx not mapped", (unsigned long)addr);
	return ret;
}

Test(elfsym, own_function_by_name_and_address, .timeout = 10)
{
	struct elfsym *e = elfsym__open("/proc/self/exe");
	uintptr_t addr = (uintptr_t)&memprof_test_target;
	const struct elf_func *f, *g;
	uint64_t off;
	int64_t vaddr;

	cr_assert_not_null(e);
	cr_assert_gt(e->nfuncs, 10);
	cr_assert_gt(e->nloads, 1);
	off = self_offset(addr);
	vaddr = elfsym__off_to_vaddr(e, off);
	cr_assert_geq(vaddr, 0);

	f = elfsym__by_name(e, "memprof_test_target");
	cr_assert_not_null(f);
	cr_assert_str_eq(f->name, "memprof_test_target");
	cr_assert_eq(f->vaddr, (uint64_t)vaddr);
	cr_assert_gt(f->size, 4);
	cr_assert_eq(elfsym__vaddr_to_off(e, f->vaddr), (int64_t)off);

	/* Its start, its middle and its last byte are all inside it. */
	g = elfsym__by_addr(e, vaddr);
	cr_assert_not_null(g);
	cr_assert_str_eq(g->name, "memprof_test_target");
	cr_assert_eq(elfsym__by_addr(e, vaddr + 3), f);
	cr_assert_eq(elfsym__by_addr(e, vaddr + f->size - 1), f);
	g = elfsym__by_addr(e, vaddr + f->size);
	cr_assert(!g || g != f, "the byte past its end is not it");

	/* Another function resolves to itself, not to its neighbour. */
	vaddr = elfsym__off_to_vaddr(
		e, self_offset((uintptr_t)&memprof_test_other));
	g = elfsym__by_addr(e, vaddr + 1);
	cr_assert_not_null(g);
	cr_assert_str_eq(g->name, "memprof_test_other");
	cr_assert_eq(elfsym__by_name(e, "memprof_test_other"), g);
	cr_assert_eq(memprof_test_target(1) + memprof_test_other(1), 11);
	elfsym__close(e);
}

Test(elfsym, read_gives_the_mapped_code, .timeout = 10)
{
	struct elfsym *e = elfsym__open("/proc/self/exe");
	const struct elf_func *f;
	uint8_t buf[16];

	cr_assert_not_null(e);
	f = elfsym__by_name(e, "memprof_test_target");
	cr_assert_not_null(f);
	cr_assert_eq(elfsym__read(e, f->vaddr, buf, sizeof(buf)), 0);
	/* Code is not relocated: the file bytes are the bytes we run. */
	cr_assert_eq(memcmp(buf, (const void *)&memprof_test_target,
			    sizeof(buf)),
		     0);
	cr_assert_eq(elfsym__read(e, 0xfffffff000000000ULL, buf, sizeof(buf)),
		     -ERANGE);
	elfsym__close(e);
}

Test(elfsym, vaddr_offset_round_trip, .timeout = 10)
{
	struct elfsym *e = elfsym__open("/proc/self/exe");
	size_t i;

	cr_assert_not_null(e);
	for (i = 0; i < e->nloads; i++) {
		const struct elf_load *l = &e->loads[i];
		uint64_t d;

		if (!l->filesz)
			continue;
		cr_assert_eq(elfsym__vaddr_to_off(e, l->vaddr),
			     (int64_t)l->offset);
		cr_assert_eq(elfsym__off_to_vaddr(e, l->offset),
			     (int64_t)l->vaddr);
		for (d = 0; d < l->filesz; d += l->filesz / 7 + 1) {
			int64_t off = elfsym__vaddr_to_off(e, l->vaddr + d);

			cr_assert_eq(off, (int64_t)(l->offset + d));
			cr_assert_eq(elfsym__off_to_vaddr(e, off),
				     (int64_t)(l->vaddr + d));
		}
	}
	cr_assert_eq(elfsym__vaddr_to_off(e, 0xfffffff000000000ULL), -1);
	cr_assert_eq(elfsym__off_to_vaddr(e, 0x7fffffffffffULL), -1);
	elfsym__close(e);
}

Test(elfsym, names_match_whole, .timeout = 10)
{
	struct elfsym *e = elfsym__open("/proc/self/exe");

	cr_assert_not_null(e);
	cr_assert_null(elfsym__by_name(e, "memprof_test_targe"));
	cr_assert_null(elfsym__by_name(e, "memprof_test_target2"));
	cr_assert_null(elfsym__by_name(e, "no_such_function_anywhere"));
	elfsym__close(e);
}

/* Where libc's default name resolves at runtime, as a vaddr in its file. */
static uint64_t libc_vaddr(const char *name, char *path, size_t size)
{
	void *p = dlsym(RTLD_DEFAULT, name);
	Dl_info info;

	cr_assert_not_null(p, "%s", name);
	cr_assert_neq(dladdr(p, &info), 0);
	cr_assert_not_null(strstr(info.dli_fname, "libc.so"), "%s in %s", name,
			   info.dli_fname);
	snprintf(path, size, "%s", info.dli_fname);
	/* libc's first PT_LOAD is at vaddr 0: vaddr = addr - base. */
	return (uintptr_t)p - (uintptr_t)info.dli_fbase;
}

Test(elfsym, libc_dynsym_malloc, .timeout = 10)
{
	char path[4096];
	uint64_t want = libc_vaddr("malloc", path, sizeof(path));
	struct elfsym *e = elfsym__open(path);
	const struct elf_func *f;

	cr_assert_not_null(e, "%s", path);
	f = elfsym__by_name(e, "malloc");
	cr_assert_not_null(f);
	cr_assert_str_eq(f->name, "malloc");
	cr_assert_eq(f->vaddr, want);
	cr_assert_gt(f->size, 0);
	cr_assert_eq(elfsym__by_addr(e, want + 1)->vaddr, want);
	cr_assert_not_null(elfsym__by_name(e, "free"));
	cr_assert_not_null(elfsym__by_name(e, "calloc"));
	elfsym__close(e);
}

/*
 * pthread_cond_wait has two versions in glibc (GLIBC_2.2.5 and the default
 * GLIBC_2.3.2); by_name must give the one the dynamic linker binds.
 */
Test(elfsym, libc_default_symbol_version, .timeout = 10)
{
	static const char *const names[] = { "pthread_cond_wait", "realpath",
					     "pthread_cond_signal" };
	char path[4096];
	struct elfsym *e = NULL;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		uint64_t want = libc_vaddr(names[i], path, sizeof(path));
		const struct elf_func *f;

		if (!e)
			e = elfsym__open(path);
		cr_assert_not_null(e);
		f = elfsym__by_name(e, names[i]);
		cr_assert_not_null(f, "%s", names[i]);
		cr_assert_eq(f->vaddr, want, "%s at 0x%llx, bound at 0x%llx",
			     names[i], (unsigned long long)f->vaddr,
			     (unsigned long long)want);
	}
	elfsym__close(e);
}

Test(elfsym, open_failures, .timeout = 10)
{
	cr_assert_null(elfsym__open("/nonexistent/libfoo.so"));
	cr_assert_null(elfsym__open("/proc/self/status"), "not an ELF file");
	cr_assert_null(elfsym__open("/"), "a directory");
	elfsym__close(NULL);
}
