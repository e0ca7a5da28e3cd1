/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared by the unit tests, which link every agent module but main.o:
 * helpers only, for main.c defines nothing the modules need.
 * Include this from exactly one file per binary (each test_*.c).
 */
#ifndef MEMPROF_TEST_UNIT_H
#define MEMPROF_TEST_UNIT_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lib/clock.h"
#include "model/heap.h"
#include "model/site.h"

/* Capture what is written to fd (1 or 2) between begin and end. */
struct capture {
	int fd, saved;
	FILE *tmp;
};

static inline void capture_begin(struct capture *c, int fd)
{
	c->fd = fd;
	c->tmp = tmpfile();
	fflush(fd == 1 ? stdout : stderr);
	c->saved = dup(fd);
	if (c->tmp && c->saved >= 0)
		dup2(fileno(c->tmp), fd);
}

/* Returns the captured text (NUL-terminated, at most size - 1 bytes). */
static inline const char *capture_end(struct capture *c, char *buf, size_t size)
{
	size_t n = 0;

	fflush(c->fd == 1 ? stdout : stderr);
	if (c->saved >= 0) {
		dup2(c->saved, c->fd);
		close(c->saved);
	}
	buf[0] = '\0';
	if (c->tmp) {
		rewind(c->tmp);
		n = fread(buf, 1, size - 1, c->tmp);
		fclose(c->tmp);
	}
	buf[n] = '\0';
	return buf;
}

/* Count of '\n' in s. */
static inline int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/*
 * The id of a site, as events.c gets one: the registry's (model/site.h,
 * initialised on first use), then the heap's counters for it; -1 on
 * ENOMEM. Tests that need no process make their sites with it.
 */
static inline int64_t unit_site(struct sites *s, struct heap *h, uint64_t ip,
				uint64_t stack)
{
	int64_t id;

	if (!s->registry.slots && sites__init(s))
		return -1;
	id = sites__lookup_or_add(s, ip, stack, NULL);
	if (id >= 0 && heap__grow_sites(h, id + 1))
		return -1;
	return id;
}

/*
 * A forked child for the census's tests: main(up, down) builds a known
 * memory shape, writes what the test must know (size bytes) up its pipe,
 * and waits on down until killed; the test reads it from outside. Its
 * report lands in report; its pid is returned, *go keeps it waiting.
 */
static inline pid_t unit_child_start(void (*main)(int up, int down),
				     void *report, size_t size, int *go)
{
	int up[2], down[2];
	pid_t pid;

	if (pipe(up) || pipe(down))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		main(up[1], down[0]);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	if (pid < 0 || read(up[0], report, size) != (ssize_t)size) {
		close(up[0]);
		close(down[1]);
		return -1;
	}
	close(up[0]);
	*go = down[1];
	return pid;
}

/* Kill and reap: the pid is gone afterwards. */
static inline void unit_child_end(pid_t pid, int go)
{
	close(go);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* RssAnon of pid in kB (/proc/PID/status): what a read must not grow. */
static inline long unit_rss_anon(pid_t pid)
{
	char fn[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(fn, sizeof(fn), "/proc/%d/status", (int)pid);
	f = fopen(fn, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

#endif
