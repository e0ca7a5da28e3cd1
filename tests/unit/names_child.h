/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Python children for the names tests (test_walk.c, test_roots.c,
 * test_names.c): start an interpreter on a script that sets known globals
 * and prints "ready {json}" (the figures the test expects, as the child
 * itself measures them), then sleeps. The child dies with the test's
 * worker (PR_SET_PDEATHSIG) and is killed by pid at the end of each test.
 */
#ifndef MEMPROF_TEST_NAMES_CHILD_H
#define MEMPROF_TEST_NAMES_CHILD_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define SID "/var/cache/memprof-bpf/sid"
#define PYENV "/root/.pyenv/versions/"

/* One interpreter the tests run: how to start it and what it is. */
struct interp {
	const char *name; /* for messages */
	const char *path; /* the binary (inside SID when sid) */
	int minor;
	bool sid; /* run with chroot SID */
	bool numpy; /* has numpy and pandas */
};

struct child {
	pid_t pid;
	json_t *expect; /* what followed "ready " */
};

/* Skip the test when the interpreter is not installed. */
static inline void child_need(const struct interp *in)
{
	char path[256];

	if (in->sid) {
		if (access(SID "/.complete", F_OK) != 0)
			cr_skip_test("no Debian unstable root");
		snprintf(path, sizeof(path), SID "%s", in->path);
	} else {
		snprintf(path, sizeof(path), "%s", in->path);
	}
	if (access(path, X_OK) != 0)
		cr_skip_test("%s is not installed", path);
}

/* Start in on code; returns once it printed its ready line. */
static inline struct child child_start(const struct interp *in,
				       const char *code)
{
	static char line[1 << 16];
	struct child c = { 0 };
	json_error_t jerr;
	size_t len = 0;
	ssize_t n;
	int fds[2];

	child_need(in);
	cr_assert_eq(pipe(fds), 0);
	c.pid = fork();
	if (c.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		close(fds[0]);
		if (in->sid)
			execl("/usr/sbin/chroot", "chroot", SID, in->path, "-c",
			      code, (char *)NULL);
		else
			execl(in->path, in->path, "-c", code, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (len < sizeof(line) - 1 && !memchr(line, '\n', len)) {
		n = read(fds[0], line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	line[len] = '\0';
	close(fds[0]);
	cr_assert(strncmp(line, "ready", 5) == 0, "%s said '%s'", in->name,
		  line);
	c.expect = json_loads(line + 5, JSON_DISABLE_EOF_CHECK, &jerr);
	if (!c.expect)
		c.expect = json_object();
	return c;
}

static inline void child_stop(struct child *c)
{
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	c->pid = 0;
	json_decref(c->expect);
	c->expect = NULL;
}

/* An expected integer the child printed (-1 when absent). */
static inline long long child_num(const struct child *c, const char *key)
{
	json_t *v = json_object_get(c->expect, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

#define INTERP_38 { "3.8", PYENV "3.8.18/bin/python3.8", 8, false, false }
#define INTERP_310 { "3.10", PYENV "3.10.13/bin/python3.10", 10, false, false }
#define INTERP_311 { "debian 3.11", "/usr/bin/python3.11", 11, false, true }
#define INTERP_312 { "3.12", PYENV "3.12.1/bin/python3.12", 12, false, false }
#define INTERP_313 { "3.13", PYENV "3.13.0/bin/python3.13", 13, false, false }
#define INTERP_314 { "sid 3.14", "/usr/bin/python3.14", 14, true, true }
#define INTERP_315 { "sid 3.15", "/usr/bin/python3.15", 15, true, true }

#endif
