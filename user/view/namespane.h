/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The live view's `n`: the selected process's names (which names hold
 * its memory), by running `memprof-bpf names --pid P` (user/names/) as a
 * child whose output the loop collects. The agent's own loop keeps
 * serving meanwhile, so the child's questions on the query socket (the
 * blocks behind each buffer, their cells) are answered.
 */
#ifndef MEMPROF_NAMESPANE_H
#define MEMPROF_NAMESPANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct loop;

struct names_pane {
	pid_t pid; /* the process asked about; 0: never asked */
	pid_t child; /* the names command while it runs, else 0 */
	int fd; /* its stdout and stderr, -1 once read to the end */
	char *text; /* what it wrote so far, NUL-terminated */
	size_t len, cap;
	int exit_code; /* once done */
	bool done;
	int top; /* the first line shown */
	uint64_t started_ns;
};

/* An empty pane. */
void namespane__init(struct names_pane *p);
/*
 * Ask again about pid: a running child is stopped first. rows: how many
 * names to ask for. 0, or -errno (the pane then says why).
 */
int namespane__start(struct names_pane *p, struct loop *l, pid_t pid, int rows);
/* Stop a running child and forget the text. */
void namespane__stop(struct names_pane *p, struct loop *l);
/* Reap a child whose output has ended (never waits); true when done. */
bool namespane__poll(struct names_pane *p);
/* Line i of the text into buf (tabs as spaces); false past the end. */
bool namespane__line(const struct names_pane *p, int i, char *buf, size_t size);
/* How many lines the text has. */
int namespane__count(const struct names_pane *p);

#endif
