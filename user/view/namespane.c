// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lib/clock.h"
#include "lib/loop.h"
#include "namespane.h"

#define TEXT_MAX (1u << 20) /* what is kept of the child's output */

void namespane__init(struct names_pane *p)
{
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

/* Keep what the child wrote (up to TEXT_MAX), NUL-terminated. */
static void append(struct names_pane *p, const char *buf, size_t n)
{
	if (p->len + n + 1 > p->cap) {
		size_t cap = p->cap ? p->cap : 4096;
		char *t;

		while (cap < p->len + n + 1)
			cap *= 2;
		if (cap > TEXT_MAX + 1)
			cap = TEXT_MAX + 1;
		if (p->len + n + 1 > cap)
			n = cap - p->len - 1;
		t = realloc(p->text, cap);
		if (!t)
			return;
		p->text = t, p->cap = cap;
	}
	memcpy(p->text + p->len, buf, n);
	p->len += n;
	p->text[p->len] = '\0';
}

/* The output's end: stop watching it. */
static void close_output(struct names_pane *p, struct loop *l)
{
	if (p->fd < 0)
		return;
	loop__del_fd(l, p->fd);
	close(p->fd);
	p->fd = -1;
}

/* The child's output as it comes (the loop never waits for it). */
static void on_output(struct loop *l, int fd, unsigned events, void *data)
{
	struct names_pane *p = data;
	char buf[8192];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		append(p, buf, (size_t)n);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
	    ((events & LOOP_HUP) && n <= 0))
		close_output(p, l);
	namespane__poll(p);
}

/* In the child: our signals back to defaults, then the names command. */
static void exec_names(int out, pid_t pid, int rows)
{
	char exe[PATH_MAX], spid[16], srows[16];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	sigset_t all;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL); /* the loop blocks some */
	signal(SIGPIPE, SIG_DFL);
	dup2(out, 1);
	dup2(out, 2);
	if (n <= 0)
		_exit(127);
	exe[n] = '\0';
	snprintf(spid, sizeof(spid), "%d", (int)pid);
	snprintf(srows, sizeof(srows), "%d", rows);
	execl(exe, exe, "names", "--pid", spid, "-n", srows, (char *)NULL);
	_exit(127);
}

void namespane__stop(struct names_pane *p, struct loop *l)
{
	close_output(p, l);
	if (p->child > 0) {
		kill(p->child, SIGKILL);
		waitpid(p->child, NULL, 0);
	}
	free(p->text);
	namespane__init(p);
}

int namespane__start(struct names_pane *p, struct loop *l, pid_t pid, int rows)
{
	int fds[2], err;

	namespane__stop(p, l);
	p->pid = pid;
	p->started_ns = now_monotonic_ns();
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	p->child = fork();
	if (p->child == 0)
		exec_names(fds[1], pid, rows);
	err = p->child < 0 ? -errno : 0;
	close(fds[1]);
	if (!err)
		err = loop__add_fd(l, fds[0], LOOP_IN, on_output, p);
	if (err) {
		close(fds[0]);
		if (p->child > 0)
			kill(p->child, SIGKILL), waitpid(p->child, NULL, 0);
		p->child = 0;
		p->done = true;
		p->exit_code = 2;
		return err;
	}
	p->fd = fds[0];
	return 0;
}

bool namespane__poll(struct names_pane *p)
{
	int status;

	if (p->done || p->child <= 0)
		return p->done;
	if (p->fd >= 0 || waitpid(p->child, &status, WNOHANG) != p->child)
		return false;
	p->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 2;
	p->child = 0;
	p->done = true;
	return true;
}

int namespane__count(const struct names_pane *p)
{
	int n = 0;
	size_t i;

	for (i = 0; i < p->len; i++)
		n += p->text[i] == '\n';
	return n + (p->len && p->text[p->len - 1] != '\n');
}

bool namespane__line(const struct names_pane *p, int i, char *buf, size_t size)
{
	const char *s = p->text, *end;
	size_t n;

	if (!s || i < 0 || !size)
		return false;
	for (; i > 0 && s; i--) {
		s = strchr(s, '\n');
		s = s ? s + 1 : NULL;
	}
	if (!s || !*s)
		return false;
	end = strchr(s, '\n');
	n = end ? (size_t)(end - s) : strlen(s);
	if (n >= size)
		n = size - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	for (i = 0; buf[i]; i++)
		if (buf[i] == '\t')
			buf[i] = ' ';
	return true;
}
