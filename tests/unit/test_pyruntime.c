// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Interpreter detection against the real interpreters on the machine:
 * pyenv 3.8-3.13 (shared libpython) and Debian's python3.11 (non-PIE,
 * libpython linked in). Each detected layout is cross-checked by reading
 * the live process: autoTSSkey initialized, and the first thread state's
 * interp pointer equal to the interpreter it hangs from.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include "procs/pyruntime.h"
#include "unit.h"

/* Start python -c CODE with stdout on a pipe; wait for its "ready". */
static pid_t start_python(const char *exe)
{
	static const char code[] = "import sys, time\n"
				   "print('ready', flush=True)\n"
				   "time.sleep(30)\n";
	char buf[16] = "";
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
	cr_assert_gt(read(fds[0], buf, sizeof(buf) - 1), 0, "%s did not start",
		     exe);
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

static void check_interpreter(const char *exe, int major, int minor)
{
	struct py_runtime rt;
	pid_t pid;
	int err;

	if (access(exe, X_OK) != 0)
		cr_skip_test("%s is not installed", exe);
	pid = start_python(exe);
	err = pyruntime__detect(pid, &rt);
	if (err == 0)
		check_live_layout(pid, &rt);
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
