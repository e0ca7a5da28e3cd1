/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The bounded walk of a Python process's objects from outside (issue 16,
 * docs/design/names-outside.md step 3): from root objects, breadth-first,
 * each object read with pyread, into a graph of nodes and references that
 * python/memprof_bpf/names.py turns into rows (the same code big_objs()
 * uses in-process). Objects only their parent holds, and that hold no
 * one else, are folded into the parent (their bytes counted there), as
 * big_objs() does: a list of five million floats is one node.
 */
#ifndef MEMPROF_WALK_H
#define MEMPROF_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/u64map.h"
#include "names/pyread.h"

#define WALK_LARGE (256u << 10) /* from here an object is its own block */

enum gstate { GS_NEW, GS_LEAF, GS_DONE, GS_PARTIAL, GS_CUT };

struct gnode {
	uint64_t addr;
	uint64_t size; /* its bytes and those folded into it */
	uint64_t refcnt; /* as read when it was found */
	uint64_t indeg; /* references the walk found: parents, bindings */
	uint64_t buf; /* a separate block behind it (array data, items), or 0 */
	uint64_t buf_bytes; /* what the header says that block holds */
	uint32_t type; /* index in walk.types */
	uint32_t kid0, nkids; /* walk.edges[kid0 .. kid0 + nkids) */
	uint32_t depth;
	uint32_t mark; /* the expansion that last listed it as a kid */
	uint8_t state; /* enum gstate */
	bool view; /* an ndarray whose first kid is its base */
	int32_t block; /* index in walk.blocks (an agent's answer), or -1 */
};

/* What a type is to the walk, like names.py's _SKIP ... _CONTAINER. */
enum gkind {
	GK_SKIP, /* None, bools, dummies: shared by everyone, never freed */
	GK_BOUNDARY, /* types, modules, functions, code: neither counted nor
		      * walked */
	GK_ATOMIC, /* no references (str, bytes, int, float, ...) */
	GK_ARRAY, /* numpy.ndarray: its base and object elements */
	GK_DICT,
	GK_LIST,
	GK_TUPLE,
	GK_SET,
	GK_OBJECT, /* any other GC object: attributes and a word scan */
};

struct gtype {
	uint64_t addr;
	char name[64]; /* bare, like type(obj).__name__ */
	uint8_t kind; /* enum gkind */
	uint64_t flags, basicsize, itemsize;
};

struct groot {
	char label[96]; /* a name, Out[N], _, user_ns_hidden['_5'] */
	uint32_t node;
	bool row; /* a row of the table (names.py's _row_name) */
	char summary[96]; /* "float64 (1000,)", "len 5", "(10, 3)" */
};

/* The block an agent says holds a node's buffer. */
struct gblock {
	uint64_t start, size;
	char cell[32], where[256];
};

struct walk {
	const struct pyread *r;
	struct gnode *nodes;
	size_t nnodes, cap;
	uint32_t *edges;
	size_t nedges, ecap;
	struct u64map index; /* address -> node + 1 */
	struct u64map typemap; /* type address -> types index + 1 */
	struct gtype *types;
	size_t ntypes, tcap;
	struct u64map bounds; /* namespaces: never nodes (names.py's bids) */
	struct groot *roots;
	size_t nroots, rcap;
	struct gblock *blocks;
	size_t nblocks;
	char **history; /* _ih, index = cell number; NULL entries allowed */
	size_t nhistory;
	uint64_t deadline_ns;
	unsigned max_depth;
	const char *stopped; /* NULL, "time" or "exited" */
	bool cut_depth;
	uint64_t unreadable; /* objects left out: torn or invalid */
	uint32_t expansions;
	uint64_t tuple_items; /* offset of a tuple's items (3.14: 0x20) */
};

/* An empty walk over r; budget_ns from now. 0 or -ENOMEM. */
int walk__init(struct walk *w, const struct pyread *r, uint64_t budget_ns,
	       unsigned max_depth);
void walk__free(struct walk *w);
/* Never a node, nor walked through (a namespace dict). */
int walk__boundary(struct walk *w, uint64_t obj);
/*
 * The node of the object at obj, made when new (depth 0: a root); -1
 * when it is not one (unreadable, skipped, a boundary).
 */
int64_t walk__node(struct walk *w, uint64_t obj, uint32_t depth);
/* A root label bound to node (refs: its bindings). 0 or -ENOMEM. */
int walk__root(struct walk *w, const char *label, uint32_t node, bool row,
	       uint64_t refs);
/* Expand breadth-first from the roots until done, cut or out of time. */
void walk__run(struct walk *w);
/* The type of a node, for summaries; never NULL. */
const struct gtype *walk__type(const struct walk *w, const struct gnode *n);
/* The target's type of the object at obj (for callers reading roots). */
const struct gtype *walk__type_of(struct walk *w, uint64_t obj);

#endif
