/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The live terminal view (ncurses), shown instead of the report lines
 * when stdout and stdin are a terminal, without --batch and without a
 * "--" command (whose output owns the terminal). It lives in the agent's
 * loop: the terminal's keys are read when it has some, without waiting,
 * rows are rebuilt by user/view/topmodel.c once per interval (or after a
 * key), and a changed screen is drawn by a timer, a bounded pass over the
 * rows, so the consumer keeps its pace. While the screen is the view's,
 * stderr and the per-cell tables go to a temporary file, replayed on
 * stderr when the view closes.
 */
#ifndef MEMPROF_TOPVIEW_H
#define MEMPROF_TOPVIEW_H

#include <stdbool.h>
#include "agent.h"
#include "options.h"

struct loop;
struct topview;

/* What the view's "w" calls: every traced process's snapshot, now. */
typedef void topview_snapshot_fn(struct agent *a, const char *reason);

/* Should this run show the view rather than the line output? */
bool topview__wanted(const struct env *env);
/*
 * Take over the terminal and join the loop (its "q" stops the loop);
 * NULL (one warning) keeps the line output.
 */
struct topview *topview__open(struct agent *a, struct loop *loop,
			      topview_snapshot_fn *snapshot);
/* Once per interval: sample the aggregates, elapsed seconds since last. */
void topview__interval(struct topview *v, double elapsed);
/* Leave the loop, give the terminal back, replay what was logged. */
void topview__close(struct topview *v);

#endif
