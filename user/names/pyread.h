/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Typed reads of a running CPython from outside (issue 16, step 1 of
 * docs/design/names-outside.md): the __main__ module's dict, a dict's
 * entries, a str's text, an object's type. Everything goes through
 * /proc/PID/mem: nothing is written to the target and no code runs in it.
 * Offsets: docs/design/names-outside-cpython.md (3.8-3.15, measured).
 */
#ifndef MEMPROF_PYREAD_H
#define MEMPROF_PYREAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "procs/pyruntime.h"

/* The builtin types a reader tells apart by address (.dynsym). */
enum py_type {
	PYT_OTHER,
	PYT_STR,
	PYT_DICT,
	PYT_LIST,
	PYT_TUPLE,
	PYT_BYTES,
	PYT_BYTEARRAY,
	PYT_INT,
	PYT_FLOAT,
	PYT_MODULE,
	PYT_COUNT
};

struct pyread {
	pid_t pid;
	struct py_runtime rt;
	uint64_t types[PYT_COUNT]; /* runtime addresses; 0: not found */
	uint32_t modules; /* PyInterpreterState -> sys.modules (dict) */
};

/* One dict entry as read: a key and its value (object addresses). */
struct py_item {
	uint64_t key, value;
};

/*
 * Find pid's interpreter, its layout and its builtin types. 0; -ENOENT
 * (not a CPython), -ENOTSUP (a version or build it cannot read).
 */
int pyread__open(struct pyread *r, pid_t pid);
/* The type of the object at obj (PYT_OTHER for any other, or unreadable). */
enum py_type pyread__type(const struct pyread *r, uint64_t obj);
/*
 * A dict's live entries into items (at most max), in insertion order.
 * Read twice around: ma_keys, ma_used, ma_values and dk_nentries must not
 * change meanwhile, or the read is retried (8 times, then -EAGAIN).
 * Returns the number of entries, or -errno.
 */
int pyread__dict_items(const struct pyread *r, uint64_t dict,
		       struct py_item *items, int max);
/*
 * A compact str's text as UTF-8 into buf (NUL-terminated, cut to size).
 * Returns its length in code points, or -errno (-EINVAL: not a compact
 * str).
 */
int pyread__str(const struct pyread *r, uint64_t str, char *buf, size_t size);
/*
 * A list's or tuple's items into items (at most max). A list is read
 * twice around (ob_item, ob_size), retried when torn. Returns the count,
 * or -errno (-EINVAL: neither).
 */
int pyread__seq_items(const struct pyread *r, uint64_t seq, uint64_t *items,
		      int max);
/* ob_type->tp_name of obj into buf; 0 or -errno. */
int pyread__type_name(const struct pyread *r, uint64_t obj, char *buf,
		      size_t size);

/* The memory an object's data occupies, and who owns it. */
struct py_buffer {
	uint64_t addr; /* where the block holding it starts (its owner's) */
	uint64_t bytes; /* what the owner holds: a view reaches this too */
	uint64_t owner; /* the object owning it (a view's base array) */
};

/*
 * The buffer behind bytes (the object itself), bytearray (ob_bytes, or
 * 3.15's bytes object), list (ob_item), and numpy arrays (data, nbytes;
 * a view's through its base chain to the array owning it: numpy 1.x and
 * 2.x). 0, -ENOENT (no separate buffer), or -errno.
 */
int pyread__buffer(const struct pyread *r, uint64_t obj, struct py_buffer *out);

/* __main__'s dict (in IPython: the kernel's user namespace). 0 or -errno. */
int pyread__main_dict(const struct pyread *r, uint64_t *dict);

#endif
