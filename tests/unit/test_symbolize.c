// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include "procs/symbolize.h"
#include "unit.h"

int memprof_sym_target(int x);

__attribute__((noinline, used)) int memprof_sym_target(int x)
{
	volatile int v = x;

	return v * 7 + 3;
}

static void expect_kept(const char *line, uint64_t start, uint64_t end,
			uint64_t off, const char *path)
{
	struct mapping m = { 0 };

	cr_assert_eq(symbolizer__parse_line(line, &m), 1, "dropped: %s", line);
	cr_assert_eq(m.start, start);
	cr_assert_eq(m.end, end);
	cr_assert_eq(m.offset, off);
	cr_assert_str_eq(m.path, path);
	free(m.path);
}

static void expect_dropped(const char *line)
{
	struct mapping m = { 0 };

	cr_assert_eq(symbolizer__parse_line(line, &m), 0, "kept: %s", line);
	cr_assert_null(m.path);
}

Test(symbolize, parse_line_keeps_executable_files, .timeout = 10)
{
	expect_kept("55d4c5a00000-55d4c5a21000 r-xp 00001000 08:01 1234567"
		    "                    /usr/bin/python3.11\n",
		    0x55d4c5a00000ULL, 0x55d4c5a21000ULL, 0x1000,
		    "/usr/bin/python3.11");
	expect_kept("7f3c12a28000-7f3c12bbd000 r-xp 00028000 fe:01 3937"
		    "  /usr/lib/x86_64-linux-gnu/libc.so.6",
		    0x7f3c12a28000ULL, 0x7f3c12bbd000ULL, 0x28000,
		    "/usr/lib/x86_64-linux-gnu/libc.so.6");
	/* Spaces inside the path are part of it. */
	expect_kept("7f0000000000-7f0000004000 r-xp 00000000 08:01 77 "
		    "/home/u/my libs/libx.so\n",
		    0x7f0000000000ULL, 0x7f0000004000ULL, 0,
		    "/home/u/my libs/libx.so");
}

Test(symbolize, parse_line_strips_deleted, .timeout = 10)
{
	expect_kept("7f5a00000000-7f5a00010000 r-xp 00002000 00:1f 99 "
		    "/tmp/libjit.so (deleted)\n",
		    0x7f5a00000000ULL, 0x7f5a00010000ULL, 0x2000,
		    "/tmp/libjit.so");
}

Test(symbolize, parse_line_drops_the_rest, .timeout = 10)
{
	/* Not executable. */
	expect_dropped("7f3c12a00000-7f3c12a28000 r--p 00000000 fe:01 3937"
		       "  /usr/lib/x86_64-linux-gnu/libc.so.6\n");
	expect_dropped("7f3c12c15000-7f3c12c19000 rw-p 001d4000 fe:01 3937"
		       "  /usr/lib/x86_64-linux-gnu/libc.so.6\n");
	/* Anonymous, even executable (a JIT). */
	expect_dropped("7f1234000000-7f1234001000 rwxp 00000000 00:00 0 \n");
	expect_dropped("7f1234000000-7f1234001000 r-xp 00000000 00:00 0\n");
	/* Pseudo files. */
	expect_dropped("7ffd4a3f2000-7ffd4a3f4000 r-xp 00000000 00:00 0"
		       "                          [vdso]\n");
	expect_dropped("55d4c6000000-55d4c6021000 rw-p 00000000 00:00 0"
		       "                          [heap]\n");
	/* Not a maps line. */
	expect_dropped("hello world\n");
	expect_dropped("");
}

Test(symbolize, resolve_own_function, .timeout = 10)
{
	uintptr_t addr = (uintptr_t)&memprof_sym_target;
	char exe[4096];
	struct symbolizer s;
	struct frame f;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	symbolizer__init(&s, getpid());
	cr_assert_eq(s.nmaps, 0);
	/* A return address 5 bytes into the function. */
	symbolizer__resolve(&s, addr + 5, &f);
	cr_assert_gt(s.nmaps, 0, "maps read on the first miss");
	cr_assert_eq(f.addr, addr + 5);
	cr_assert_not_null(f.function);
	cr_assert_str_eq(f.function, "memprof_sym_target");
	cr_assert_not_null(f.module);
	cr_assert_str_eq(f.module, exe);
	cr_assert_eq(f.offset, 5);
	frame__free(&f);
	cr_assert_null(f.function);

	/* Again, from the cached ELF. */
	symbolizer__resolve(&s, addr + 1, &f);
	cr_assert_str_eq(f.function, "memprof_sym_target");
	cr_assert_eq(f.offset, 1);
	frame__free(&f);
	cr_assert_eq(memprof_sym_target(1), 10);
	symbolizer__free(&s);
	symbolizer__cache_clear();
	cr_assert_eq(s.nmaps, 0);
}

Test(symbolize, resolve_libc_function, .timeout = 10)
{
	void *(*volatile fn)(size_t) = malloc;
	struct symbolizer s;
	struct frame f;

	symbolizer__init(&s, getpid());
	symbolizer__resolve(&s, (uintptr_t)fn + 8, &f);
	cr_assert_not_null(f.module);
	cr_assert_not_null(strstr(f.module, "libc.so"), "%s", f.module);
	cr_assert_not_null(f.function);
	/* malloc and __libc_malloc are one address; no version suffix. */
	cr_assert(strcmp(f.function, "malloc") == 0 ||
			  strcmp(f.function, "__libc_malloc") == 0,
		  "%s", f.function);
	cr_assert_eq(f.offset, 8);
	frame__free(&f);
	symbolizer__free(&s);
	symbolizer__cache_clear();
}

Test(symbolize, resolve_unmapped_address, .timeout = 10)
{
	struct symbolizer s;
	struct frame f;

	symbolizer__init(&s, getpid());
	symbolizer__resolve(&s, 0x10, &f);
	cr_assert_eq(f.addr, 0x10);
	cr_assert_null(f.function);
	cr_assert_null(f.module);
	frame__free(&f);
	symbolizer__free(&s);
}

Test(symbolize, gone_process, .timeout = 10)
{
	struct symbolizer s;
	struct frame f;

	/* Above pid_max: no such process, no maps to read. */
	symbolizer__init(&s, 0x7ffffff0);
	cr_assert_lt(symbolizer__refresh(&s), 0);
	symbolizer__resolve(&s, (uintptr_t)&memprof_sym_target, &f);
	cr_assert_null(f.function);
	cr_assert_null(f.module);
	symbolizer__free(&s);
}

/*
 * A process that exits keeps the mappings read while it lived, and is
 * never read again: a snapshot written after its exit resolves thousands
 * of sites, and each used to re-open /proc/PID/maps (19,000 opens, seconds
 * of the agent's exit).
 */
Test(symbolize, exited_process_is_read_no_more, .timeout = 10)
{
	struct symbolizer s;
	struct frame f;
	size_t n;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	symbolizer__init(&s, pid);
	cr_assert_eq(symbolizer__refresh(&s), 0);
	n = s.nmaps;
	cr_assert_gt(n, 0);
	cr_assert_not(s.gone);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_eq(symbolizer__refresh(&s), -ENOENT);
	cr_assert(s.gone);
	cr_assert_eq(symbolizer__refresh(&s), -ESRCH, "not read again");
	cr_assert_eq(s.nmaps, n, "the copy taken while it lived stays");
	/* The child is a fork of this process: same mappings, same names. */
	symbolizer__resolve(&s, (uintptr_t)&memprof_sym_target + 1, &f);
	cr_assert_not_null(f.function);
	cr_assert_str_eq(f.function, "memprof_sym_target");
	frame__free(&f);
	symbolizer__free(&s);
}

/*
 * A refresh frees the mapping array and its paths: a resolved frame owns
 * copies, so sites resolved before it keep their names (the agent refreshes
 * a Python kernel's mappings at every poll while it looks for the notebook
 * extension's marker library).
 */
Test(symbolize, frame_outlives_refresh, .timeout = 10)
{
	uintptr_t addr = (uintptr_t)&memprof_sym_target;
	struct symbolizer s;
	struct frame f;
	char *module;
	size_t i;
	int r;

	symbolizer__init(&s, getpid());
	symbolizer__resolve(&s, addr + 5, &f);
	cr_assert_not_null(f.module);
	module = strdup(f.module);
	cr_assert_not_null(module);
	for (r = 0; r < 3; r++) {
		cr_assert_eq(symbolizer__refresh(&s), 0);
		for (i = 0; i < s.nmaps; i++)
			cr_assert_neq(f.module, s.maps[i].path);
	}
	cr_assert_str_eq(f.module, module);
	cr_assert_str_eq(f.function, "memprof_sym_target");
	cr_assert_eq(f.offset, 5);
	free(module);
	frame__free(&f);
	symbolizer__free(&s);
	symbolizer__cache_clear();
}

/* A forked child's mappings are its parent's until it is read itself. */
Test(symbolize, clone_keeps_names_after_the_source_goes)
{
	struct symbolizer a, b;
	struct frame f = { 0 };
	size_t i;

	symbolizer__init(&a, getpid());
	symbolizer__init(&b, 999999999); /* never readable */
	cr_assert_eq(symbolizer__refresh(&a), 0);
	cr_assert_eq(symbolizer__clone(&b, &a), 0);
	cr_assert_eq(b.nmaps, a.nmaps);
	for (i = 0; i < a.nmaps; i++) {
		cr_assert_str_eq(b.maps[i].path, a.maps[i].path);
		cr_assert_neq(b.maps[i].path, a.maps[i].path); /* its own */
	}
	symbolizer__free(&a);
	symbolizer__resolve(&b, (uint64_t)(uintptr_t)&memprof_sym_target + 5,
			    &f);
	cr_assert_not_null(f.function);
	cr_assert_str_eq(f.function, "memprof_sym_target");
	frame__free(&f);
	symbolizer__free(&b);
}
