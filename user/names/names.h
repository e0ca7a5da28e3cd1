/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `memprof-bpf names`: which names of a running Python (a notebook
 * kernel) hold its memory, read from outside with no extension and no
 * restart, even while a cell runs (issue 16). Phases: find the
 * processes, read each one's roots and walk its objects (roots.c,
 * walk.c), size its buffers by a running agent's blocks when one traces
 * it, then hand the graphs to python/memprof_bpf/names.py, which prints
 * the table big_objs() prints.
 */
#ifndef MEMPROF_NAMES_H
#define MEMPROF_NAMES_H

/* argv[0] is "names". The process's exit code. */
int names__main(int argc, char **argv);

#endif
