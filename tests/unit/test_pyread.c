// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Reading a live CPython's globals from outside: pyenv 3.8-3.13, Debian's
 * python3.11 and, when the Debian unstable root exists (scripts/
 * sid-root.sh), its python3.14 and python3.15 run with chroot. The child
 * sets known globals; the test finds them through __main__'s dict.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include "names/pyread.h"
#include "unit.h"

#define SID "/var/cache/memprof-bpf/sid"

static const char code[] = "import time\n"
			   "s_ascii = ''.join(['memprof-'] * 3)\n"
			   "s_latin = 'gamma' + chr(233)\n"
			   "s_ucs2 = 'h' + chr(233) + 'llo ' + chr(8364)\n"
			   "big = {'k%d' % i: i for i in range(300)}\n"
			   "ints = {i: str(i) for i in range(5)}\n"
			   "items = [bytes(77), bytearray(5000)]\n"
			   "tup = (1, 'x', None)\n"
			   "try:\n"
			   "    import numpy as np\n"
			   "    arr = np.ones(1000)\n"
			   "    view = arr[::2]\n"
			   "except ImportError:\n"
			   "    pass\n"
			   "print('ready', flush=True)\n"
			   "time.sleep(30)\n";

/* Start python (argv) with code; returns its pid once it said ready. */
static pid_t start(char *const argv[])
{
	char line[64] = "";
	int fds[2];
	ssize_t n;
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	n = read(fds[0], line, sizeof(line) - 1);
	close(fds[0]);
	cr_assert_gt(n, 0, "%s did not start", argv[0]);
	cr_assert(strncmp(line, "ready", 5) == 0, "%s said %s", argv[0], line);
	return pid;
}

/* The value of global name, 0 if absent. */
static uint64_t global(const struct pyread *r, const struct py_item *it, int n,
		       const char *name)
{
	char text[64];
	int i;

	for (i = 0; i < n; i++)
		if (pyread__str(r, it[i].key, text, sizeof(text)) >= 0 &&
		    strcmp(text, name) == 0)
			return it[i].value;
	return 0;
}

/* Lists, tuples, and the buffers behind bytes, bytearray and arrays. */
static void check_containers(const struct pyread *r, const struct py_item *it,
			     int n, int minor)
{
	uint64_t seq[8], arr;
	struct py_buffer b, v;
	char text[64];

	cr_assert_eq(pyread__seq_items(r, global(r, it, n, "items"), seq, 8),
		     2);
	cr_assert_eq(pyread__type(r, seq[0]), PYT_BYTES);
	cr_assert_eq(pyread__buffer(r, seq[0], &b), 0);
	cr_assert(b.addr == seq[0] && b.bytes == 0x21 + 77);
	cr_assert_eq(pyread__type(r, seq[1]), PYT_BYTEARRAY);
	cr_assert_eq(pyread__buffer(r, seq[1], &b), 0);
	/* 3.15 keeps a bytearray's data in a bytes object. */
	cr_assert_eq(b.bytes, minor >= 15 ? 0x21 + 5000 : 5001);
	cr_assert_eq(pyread__seq_items(r, global(r, it, n, "tup"), seq, 8), 3);
	cr_assert_eq(pyread__str(r, seq[1], text, sizeof(text)), 1);
	cr_assert_str_eq(text, "x");
	cr_assert_eq(pyread__type_name(r, seq[2], text, sizeof(text)), 0);
	cr_assert_str_eq(text, "NoneType");
	arr = global(r, it, n, "arr");
	if (!arr)
		return; /* no numpy in this interpreter */
	cr_assert_eq(pyread__type_name(r, arr, text, sizeof(text)), 0);
	cr_assert_str_eq(text, "numpy.ndarray");
	cr_assert_eq(pyread__buffer(r, arr, &b), 0);
	cr_assert(b.owner == arr && b.bytes == 8000 && b.addr);
	/* A view reaches its base's buffer, the same block. */
	cr_assert_eq(pyread__buffer(r, global(r, it, n, "view"), &v), 0);
	cr_assert(v.owner == arr && v.addr == b.addr && v.bytes == 8000);
}

static void check_globals(char *const argv[], int minor)
{
	static struct py_item it[512], d[512];
	struct pyread r;
	uint64_t dict, v;
	char text[64];
	pid_t pid;
	int n, err;

	if (access(argv[0], X_OK) != 0)
		cr_skip_test("%s is not installed", argv[0]);
	pid = start(argv);
	err = pyread__open(&r, pid);
	if (!err)
		err = pyread__main_dict(&r, &dict);
	n = err ? err : pyread__dict_items(&r, dict, it, 512);
	cr_assert_gt(n, 8, "%s: %d", argv[0], n);
	cr_assert_eq(r.rt.minor, minor);
	v = global(&r, it, n, "__name__");
	cr_assert_eq(pyread__str(&r, v, text, sizeof(text)), 8);
	cr_assert_str_eq(text, "__main__");
	v = global(&r, it, n, "s_ascii");
	cr_assert_eq(pyread__str(&r, v, text, sizeof(text)), 24);
	cr_assert_str_eq(text, "memprof-memprof-memprof-");
	cr_assert_eq(pyread__str(&r, global(&r, it, n, "s_latin"), text,
				 sizeof(text)),
		     6);
	cr_assert_str_eq(text, "gamma\xc3\xa9");
	cr_assert_eq(pyread__str(&r, global(&r, it, n, "s_ucs2"), text,
				 sizeof(text)),
		     7);
	cr_assert_str_eq(text, "h\xc3\xa9llo \xe2\x82\xac");
	/* A 300-key str dict, and an int-keyed one (general entries). */
	v = global(&r, it, n, "big");
	cr_assert_eq(pyread__type(&r, v), PYT_DICT);
	cr_assert_eq(pyread__dict_items(&r, v, d, 512), 300);
	cr_assert_eq(pyread__str(&r, d[299].key, text, sizeof(text)), 4);
	cr_assert_str_eq(text, "k299");
	cr_assert_eq(pyread__type(&r, d[299].value), PYT_INT);
	v = global(&r, it, n, "ints");
	cr_assert_eq(pyread__dict_items(&r, v, d, 512), 5);
	cr_assert_eq(pyread__type(&r, d[4].key), PYT_INT);
	cr_assert_eq(pyread__str(&r, d[4].value, text, sizeof(text)), 1);
	cr_assert_str_eq(text, "4");
	check_containers(&r, it, n, minor);
	pyread__close(&r);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

#define PYENV "/root/.pyenv/versions/"
#define PY(path, ...) ((char *const[]){ path, __VA_ARGS__, NULL })

Test(pyread, pyenv_3_8, .timeout = 30)
{
	check_globals(PY(PYENV "3.8.18/bin/python3.8", "-c", (char *)code), 8);
}

Test(pyread, pyenv_3_10, .timeout = 30)
{
	check_globals(PY(PYENV "3.10.13/bin/python3.10", "-c", (char *)code),
		      10);
}

Test(pyread, debian_3_11, .timeout = 30)
{
	check_globals(PY("/usr/bin/python3.11", "-c", (char *)code), 11);
}

Test(pyread, pyenv_3_12, .timeout = 30)
{
	check_globals(PY(PYENV "3.12.1/bin/python3.12", "-c", (char *)code),
		      12);
}

Test(pyread, pyenv_3_13, .timeout = 30)
{
	check_globals(PY(PYENV "3.13.0/bin/python3.13", "-c", (char *)code),
		      13);
}

static void sid(const char *python, int minor)
{
	if (access(SID "/.complete", F_OK) != 0)
		cr_skip_test("no Debian unstable root (scripts/sid-root.sh)");
	check_globals(PY("/usr/sbin/chroot", SID, (char *)python, "-c",
			 (char *)code),
		      minor);
}

Test(pyread, sid_3_14, .timeout = 30)
{
	sid("python3.14", 14);
}

Test(pyread, sid_3_15, .timeout = 30)
{
	sid("python3.15", 15);
}
