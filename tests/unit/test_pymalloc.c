// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "census/census.h"
#include "unit.h"

#define PY311 "/usr/bin/python3.11"
#define PY38 "/root/.pyenv/versions/3.8.18/bin/python3"

/*
 * Many small objects, a third freed; then pymalloc's own statistics on
 * stderr (the arena count), "ready" on stdout, and a long sleep.
 */
static const char script[] = "import sys, gc, time\n"
			     "keep = []\n"
			     "for i in range(300000):\n"
			     "    keep.append((i, str(i) * (i % 7), [i] * (i % "
			     "5),\n"
			     "                 {'k': i} if i % 11 == 0 else "
			     "None))\n"
			     "del keep[::3]\n"
			     "gc.collect()\n"
			     "sys._debugmallocstats()\n"
			     "sys.stderr.flush()\n"
			     "print('ready', flush=True)\n"
			     "time.sleep(1000)\n";

struct python {
	pid_t pid;
	int arenas; /* "arenas allocated current" */
};

/* The interpreter's stderr goes to a file, its stdout to a pipe. */
static void run_python(const char *exe, struct python *py)
{
	char stats[] = "/tmp/test_pymalloc.XXXXXX", line[256];
	int out[2], err_fd = mkstemp(stats);
	FILE *f;

	cr_assert_geq(err_fd, 0);
	cr_assert_eq(pipe(out), 0);
	py->pid = fork();
	cr_assert_geq(py->pid, 0);
	if (py->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphan on a failure */
		dup2(out[1], 1);
		dup2(err_fd, 2);
		close(out[0]);
		execl(exe, exe, "-c", script, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	f = fdopen(out[0], "r");
	cr_assert(f && fgets(line, sizeof(line), f), "%s did not start", exe);
	cr_assert_str_eq(line, "ready\n");
	fclose(f);
	py->arenas = -1;
	f = fopen(stats, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		sscanf(line, "# arenas allocated current = %d", &py->arenas);
	fclose(f);
	close(err_fd);
	unlink(stats);
	cr_assert_gt(py->arenas, 0, "no arena count in the statistics");
}

static void end_python(struct python *py)
{
	kill(py->pid, SIGKILL);
	waitpid(py->pid, NULL, 0);
}

/* The census of a live interpreter finds each of its arenas, whole. */
static void expect_arenas(const char *exe, uint64_t arena)
{
	struct census c = { 0 };
	struct python py;
	size_t i, n = 0;

	run_python(exe, &py);
	cr_assert_eq(census__take(py.pid, &c), 0);
	for (i = 0; i < c.nregions; i++) {
		if (c.regions[i].kind != CENSUS_PYTHON)
			continue;
		cr_assert_eq(c.regions[i].hi - c.regions[i].lo, arena,
			     "arena %#lx-%#lx", (unsigned long)c.regions[i].lo,
			     (unsigned long)c.regions[i].hi);
		n++;
	}
	cr_assert_eq(n, (size_t)py.arenas, "found %zu arenas, Python has %d", n,
		     py.arenas);
	cr_assert_eq(c.count[CENSUS_PYTHON], (uint64_t)py.arenas);
	cr_assert_eq(c.bytes[CENSUS_PYTHON], (uint64_t)py.arenas * arena);
	cr_assert_str_eq(c.warning, "");
	census__free(&c);
	end_python(&py);
}

Test(pymalloc, arenas_of_16k_pools, .timeout = 10)
{
	if (access(PY311, X_OK))
		cr_skip_test("%s is not installed", PY311);
	expect_arenas(PY311, 1 << 20);
}

Test(pymalloc, arenas_of_4k_pools, .timeout = 10)
{
	if (access(PY38, X_OK))
		cr_skip_test("%s (pyenv) is not installed", PY38);
	expect_arenas(PY38, 256 << 10);
}

/* A process with no Python has no arenas, whatever its memory holds. */
Test(pymalloc, none_in_a_c_process, .timeout = 10)
{
	struct census c = { 0 };

	cr_assert_eq(census__take(getpid(), &c), 0);
	cr_assert_eq(c.count[CENSUS_PYTHON], 0);
	census__free(&c);
}
