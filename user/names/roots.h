/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The walk's roots, read from outside as big_objs() finds them inside
 * (python/memprof_bpf/names.py, _bindings and _boundary_ids): the names
 * of __main__'s dict (in IPython, the kernel's user namespace), each
 * output-cache entry as Out[N], `_`, `__`, `___`, and the references
 * IPython itself keeps to them (the displayhook, user_ns_hidden, the last
 * execution result), so that they are not taken for outside holders.
 * Also the namespaces that bound the walk, the roots' summaries and the
 * input history (_ih) the cells are guessed from.
 */
#ifndef MEMPROF_ROOTS_H
#define MEMPROF_ROOTS_H

#include <stdint.h>
#include "names/walk.h"

/*
 * Register ns's roots in w (ns: __main__'s dict). 0, -ENOENT (ns cannot
 * be read), -ENOMEM.
 */
int roots__read(struct walk *w, uint64_t ns);
/* Each root's summary ("float64 (1000,)", "(10, 3)", "len 5"). */
void roots__summaries(struct walk *w);

#endif
