/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Folded stacks of a snapshot's peak, one line a stack: "cell;frame;...
 * bytes", the input of flamegraph.pl, inferno and speedscope.
 */
#ifndef MEMPROF_FOLDED_H
#define MEMPROF_FOLDED_H

#include <jansson.h>
#include <stdio.h>

void folded__write(FILE *out, json_t *doc);

#endif
