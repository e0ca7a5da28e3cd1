/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The live terminal view (ncurses), shown instead of the report lines
 * when stdout and stdin are a terminal, without --batch and without a
 * "--" command (whose output owns the terminal). It runs in the agent's
 * one thread, between ring-buffer drains: keys are read without waiting,
 * rows are rebuilt by user/view/topmodel.c once per interval (or after a key),
 * and drawing is a bounded pass over them, so the consumer keeps its
 * pace. While the screen is the view's, stderr and the per-cell tables go
 * to a temporary file, replayed on stderr when the view closes.
 */
#ifndef MEMPROF_TOPVIEW_H
#define MEMPROF_TOPVIEW_H

#include <stdbool.h>
#include "agent.h"
#include "options.h"

struct topview;

/* Should this run show the view rather than the line output? */
bool topview__wanted(const struct env *env);
/* Take over the terminal; NULL (one warning) keeps the line output. */
struct topview *topview__open(struct agent *a);
/* Once per interval: sample the aggregates, elapsed seconds since last. */
void topview__interval(struct topview *v, double elapsed);
/* Once per poll: act on pending keys (never waits), redraw if needed. */
void topview__poll(struct topview *v);
/* Give the terminal back and replay what was logged meanwhile. */
void topview__close(struct topview *v);

#endif
