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

#include <stdbool.h>
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
	PYT_SET,
	PYT_FROZENSET,
	PYT_TYPE,
	PYT_COUNT
};

/*
 * Lines of the target read whole and kept for one walk: a list's five
 * million floats sit side by side in pymalloc pools, so their headers
 * cost one read per 64 KiB instead of one each. What must not be stale
 * (a header read twice around its items) is read with pyread__read.
 */
#define PYREAD_LINE (64u << 10)
#define PYREAD_LINES 512u /* 32 MiB */

struct pyread_cache {
	uint64_t tag[PYREAD_LINES]; /* line address + 1; 0: empty */
	uint64_t reads; /* lines read in */
	uint8_t data[PYREAD_LINES * PYREAD_LINE];
};

struct pyread {
	pid_t pid;
	int fd; /* /proc/PID/mem */
	struct pyread_cache *cache;
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
/* Close what pyread__open opened. */
void pyread__close(struct pyread *r);
/* size bytes at addr, read now (never cached). 0 or -EIO. */
int pyread__read(const struct pyread *r, uint64_t addr, void *buf, size_t size);
/*
 * The same through the cache: what the line held when first read. For
 * the walk's many small headers, not for reads checked against a second.
 */
int pyread__peek(const struct pyread *r, uint64_t addr, void *buf, size_t size);
/* Empty the cache (a retry after a torn read wants fresh lines). */
void pyread__forget(const struct pyread *r);
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

/*
 * An instance's attributes (key, value): its __dict__, or on 3.11+ the
 * managed or inline values paired with the type's cached keys. The
 * count, -ENOENT (none), or -errno.
 */
int pyread__attrs(const struct pyread *r, uint64_t obj, struct py_item *items,
		  int max);
/* The attributes' dict object when there is one (0: values, or none). */
uint64_t pyread__attrs_dict(const struct pyread *r, uint64_t obj);
/* Attribute name of obj (among its first 4096), or 0. */
uint64_t pyread__attr(const struct pyread *r, uint64_t obj, const char *name);
/* The value of str key name in dict (its first 4096 entries), or 0. */
uint64_t pyread__dict_get(const struct pyread *r, uint64_t dict,
			  const char *name);
/* A set's or frozenset's keys (dummies included), or -errno. */
int pyread__set_items(const struct pyread *r, uint64_t set, uint64_t *items,
		      int max);
/* A small int's value (up to 60 bits); -EINVAL (not an int), -ERANGE. */
int pyread__long(const struct pyread *r, uint64_t obj, int64_t *v);

#define PY_ARRAY_DIMS 8

/* What a numpy array's header says. */
struct py_array {
	uint64_t data, base, nbytes;
	uint64_t dims[PY_ARRAY_DIMS]; /* the first PY_ARRAY_DIMS */
	int nd;
	bool owndata, hasobject;
	char dtype[32]; /* "float64", "int64", "object" */
};

/* obj's array header; -EINVAL (not an ndarray), -EIO. */
int pyread__array(const struct pyread *r, uint64_t obj, struct py_array *a);

/* __main__'s dict (in IPython: the kernel's user namespace). 0 or -errno. */
int pyread__main_dict(const struct pyread *r, uint64_t *dict);

#endif
