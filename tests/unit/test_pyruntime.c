// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Interpreter detection against the real interpreters on the machine:
 * pyenv 3.8-3.13 (shared libpython) and Debian's python3.11 (non-PIE,
 * libpython linked in). Each detected layout is cross-checked by reading
 * the live process: autoTSSkey initialized, the first thread state's
 * interp pointer equal to the interpreter it hangs from, and the object
 * header offsets (str, bytes, type) against objects Python names by id().
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include "procs/pyruntime.h"
#include "unit.h"

/*
 * Start python -c CODE with stdout on a pipe; wait for its line "ready"
 * and the objects check_objects() reads: a str built at run time (its
 * address, hash, length), a bytes object (address, length) and the code
 * object type (address, tp_basicsize).
 */
static pid_t start_python(const char *exe, char *buf, size_t size)
{
	static const char code[] = "import sys, time\n"
				   "s = ''.join(['memprof-'] * 4)\n"
				   "b = bytes(range(97, 106))\n"
				   "c = type((lambda: 0).__code__)\n"
				   "print('ready', id(s), hash(s), len(s), "
				   "id(b), len(b), id(c),\n"
				   "      c.__basicsize__, flush=True)\n"
				   "time.sleep(30)\n";
	ssize_t n, got = 0;
	int fds[2];
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		execl(exe, exe, "-c", code, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (got < (ssize_t)size - 1 &&
	       (n = read(fds[0], buf + got, size - 1 - got)) > 0) {
		got += n;
		if (buf[got - 1] == '\n')
			break;
	}
	buf[got] = '\0';
	cr_assert_gt(got, 0, "%s did not start", exe);
	close(fds[0]);
	return pid;
}

static void stop_python(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static uint64_t peek(int fd, uint64_t addr, size_t size)
{
	uint64_t v = 0;

	cr_assert_eq(pread(fd, &v, size, addr), (ssize_t)size, "read at 0x%llx",
		     (unsigned long long)addr);
	return v;
}

/* The layout must lead from _PyRuntime to a consistent thread state. */
static void check_live_layout(pid_t pid, const struct py_runtime *rt)
{
	const struct py_layout *l = rt->layout;
	char fname[64];
	uint64_t interp, tstate;
	int fd;

	snprintf(fname, sizeof(fname), "/proc/%d/mem", pid);
	fd = open(fname, O_RDONLY);
	cr_assert_geq(fd, 0);
	/* Py_tss_t {int _is_initialized; pthread_key_t _key} */
	cr_assert_eq(peek(fd, rt->runtime + l->tss_key - 4, 4), 1);
	cr_assert_lt(peek(fd, rt->runtime + l->tss_key, 4), 32);
	interp = peek(fd, rt->runtime + l->interp_head, 8);
	cr_assert_neq(interp, 0);
	tstate = peek(fd, interp + l->interp_threads, 8);
	cr_assert_neq(tstate, 0);
	cr_assert_eq(peek(fd, tstate + l->ts_interp, 8), interp);
	close(fd);
}

/* Whether addr lies in an executable mapping of pid. */
static bool in_code(pid_t pid, uint64_t addr)
{
	unsigned long long lo, hi;
	char fname[64], line[4400], perms[8];
	bool found = false;
	FILE *f;

	snprintf(fname, sizeof(fname), "/proc/%d/maps", pid);
	f = fopen(fname, "r");
	cr_assert_not_null(f);
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) == 3 &&
			perms[2] == 'x' && addr >= lo && addr < hi;
	fclose(f);
	return found;
}

/*
 * The object header offsets the BPF walker reads (str_identity, the line
 * table copy) and code_dealloc's discovery uses (tp_dealloc), checked on
 * the objects start_python() printed.
 */
static void check_objects(pid_t pid, const struct py_layout *l,
			  const char *ready)
{
	unsigned long long s, slen, b, blen, c, basicsize;
	long long hash;
	char fname[64], text[64];
	int fd;

	cr_assert_eq(sscanf(ready, "ready %llu %lld %llu %llu %llu %llu %llu",
			    &s, &hash, &slen, &b, &blen, &c, &basicsize),
		     7, "python said: %s", ready);
	snprintf(fname, sizeof(fname), "/proc/%d/mem", pid);
	fd = open(fname, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(peek(fd, s + l->str_length, 8), slen);
	cr_assert_eq((long long)peek(fd, s + l->str_hash, 8), hash);
	cr_assert_eq(pread(fd, text, slen, s + l->ascii_data), (ssize_t)slen);
	cr_assert_eq(memcmp(text, "memprof-memprof-memprof-memprof-", slen), 0);
	cr_assert_eq(peek(fd, b + l->bytes_size, 8), blen);
	cr_assert_eq(pread(fd, text, blen, b + l->bytes_data), (ssize_t)blen);
	cr_assert_eq(memcmp(text, "abcdefghi", blen), 0);
	/* tp_basicsize, tp_itemsize, then tp_dealloc: a function. */
	cr_assert_eq(peek(fd, c + l->tp_dealloc - 16, 8), basicsize);
	cr_assert(in_code(pid, peek(fd, c + l->tp_dealloc, 8)));
	close(fd);
}

static void check_interpreter(const char *exe, int major, int minor)
{
	char ready[256];
	struct py_runtime rt;
	pid_t pid;
	int err;

	if (access(exe, X_OK) != 0)
		cr_skip_test("%s is not installed", exe);
	pid = start_python(exe, ready, sizeof(ready));
	err = pyruntime__detect(pid, &rt);
	if (err == 0) {
		check_live_layout(pid, &rt);
		check_objects(pid, rt.layout, ready);
	}
	stop_python(pid);
	cr_assert_eq(err, 0, "%s: detect returned %d", exe, err);
	cr_assert_eq(rt.major, major);
	cr_assert_eq(rt.minor, minor);
	cr_assert_not_null(rt.layout);
	cr_assert_eq(rt.runtime_size, rt.layout->runtime_size);
}

#define PYENV "/root/.pyenv/versions/"

Test(pyruntime, pyenv_3_8, .timeout = 30)
{
	check_interpreter(PYENV "3.8.18/bin/python3.8", 3, 8);
}

Test(pyruntime, pyenv_3_9, .timeout = 30)
{
	check_interpreter(PYENV "3.9.18/bin/python3.9", 3, 9);
}

Test(pyruntime, pyenv_3_10, .timeout = 30)
{
	check_interpreter(PYENV "3.10.13/bin/python3.10", 3, 10);
}

Test(pyruntime, pyenv_3_11, .timeout = 30)
{
	check_interpreter(PYENV "3.11.7/bin/python3.11", 3, 11);
}

Test(pyruntime, pyenv_3_12, .timeout = 30)
{
	check_interpreter(PYENV "3.12.1/bin/python3.12", 3, 12);
}

Test(pyruntime, pyenv_3_13_debug_offsets, .timeout = 30)
{
	check_interpreter(PYENV "3.13.0/bin/python3.13", 3, 13);
}

Test(pyruntime, debian_python3_11_non_pie, .timeout = 30)
{
	check_interpreter("/usr/bin/python3.11", 3, 11);
}

Test(pyruntime, not_python, .timeout = 10)
{
	struct py_runtime rt;

	/* The test binary itself has no _PyRuntime. */
	cr_assert_eq(pyruntime__detect(getpid(), &rt), -ENOENT);
}

Test(pyruntime, versions_from_paths, .timeout = 10)
{
	int ma, mi;

	cr_assert_eq(pyruntime__version_from_path("/usr/bin/python3.11", &ma,
						  &mi),
		     0);
	cr_assert(ma == 3 && mi == 11);
	cr_assert_eq(pyruntime__version_from_path("/x/lib/libpython3.12.so.1.0",
						  &ma, &mi),
		     0);
	cr_assert(ma == 3 && mi == 12);
	cr_assert_neq(pyruntime__version_from_path("/usr/bin/perl", &ma, &mi),
		      0);
	cr_assert_null(pyruntime__layout(3, 7));
	cr_assert_null(pyruntime__layout(3, 14));
}

/* Object headers: alike in 3.8-3.13 (docs/cpython-offsets.md). */
Test(pyruntime, object_headers_in_every_layout, .timeout = 10)
{
	const struct py_layout *l;
	int minor;

	for (minor = 8; minor <= 13; minor++) {
		l = pyruntime__layout(3, minor);
		cr_assert_not_null(l, "3.%d", minor);
		cr_assert_eq(l->str_length, 0x10, "3.%d", minor);
		cr_assert_eq(l->str_hash, 0x18, "3.%d", minor);
		cr_assert_eq(l->bytes_size, 0x10, "3.%d", minor);
		cr_assert_eq(l->bytes_data, 0x20, "3.%d", minor);
		cr_assert_eq(l->tp_dealloc, 48, "3.%d", minor);
	}
}

/* 3.13+: _Py_DebugOffsets' cookie and version must say this interpreter. */
Test(pyruntime, debug_header_cookie_and_version_checked, .timeout = 10)
{
	unsigned char hdr[16] = "xdebugpy";
	uint64_t v = 0x030d00f0; /* 3.13.0 final */
	char why[160] = "";

	memcpy(hdr + 8, &v, sizeof(v));
	cr_assert_eq(
		pyruntime__check_debug_header(hdr, 3, 13, why, sizeof(why)), 0);
	cr_assert_str_empty(why);
	cr_assert_eq(pyruntime__check_debug_header(hdr, 3, 14, why,
						   sizeof(why)),
		     -ENOTSUP);
	cr_assert_str_eq(why, "its _Py_DebugOffsets says version 3.13, not "
			      "3.14");
	hdr[0] = 'X';
	cr_assert_eq(pyruntime__check_debug_header(hdr, 3, 13, why,
						   sizeof(why)),
		     -ENOTSUP);
	cr_assert_str_eq(why, "its _PyRuntime does not start with "
			      "_Py_DebugOffsets' cookie");
}
