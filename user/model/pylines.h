/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Current line of a Python frame: the code object's line table, read from
 * the process when the code object is first seen, decoded for the
 * instruction index the probe recorded. Three formats: co_lnotab (3.8,
 * 3.9), co_linetable (3.10), the location table (3.11+); described in
 * docs/cpython-offsets.md.
 */
#ifndef MEMPROF_PYLINES_H
#define MEMPROF_PYLINES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "procs/pyruntime.h"

/* Read code->co_linetable (or co_lnotab) bytes; 0 or -errno. */
int pylines__read_table(pid_t pid, uint64_t code, const struct py_layout *l,
			uint8_t **table, size_t *len);
/*
 * Line for instruction index lasti (code units from 3.10, bytes before);
 * firstlineno when unknown (lasti < 0, no table, no line).
 */
int pylines__line(int minor, const uint8_t *table, size_t len, int firstlineno,
		  int lasti);

#endif
