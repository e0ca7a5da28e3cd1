/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Line output (no terminal, or --batch): one line per traced process. */
#ifndef MEMPROF_BATCH_H
#define MEMPROF_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "agent.h"

/* Print the report for this interval (elapsed seconds since the last). */
void batch__report(struct agent *a, FILE *out, double elapsed);
/*
 * The per-cell table of a notebook kernel (nothing without cell runs):
 * each run's live bytes now, the process high during it and how far above
 * its start level, its bytes at the high-water mark, and its source line.
 */
void batch__cells(FILE *out, struct tracee *t, uint64_t now_ns);

#endif
