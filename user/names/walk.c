// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/clock.h"
#include "procs/procs.h"
#include "walk.h"

#define HDR 0x48 /* the header bytes a node's size and kids need */
#define SCAN_MAX 512 /* bytes of an unknown object scanned for pointers */
#define FAST_MIN 512 /* containers this long are never folded */
#define ITEMS_MAX (1 << 24) /* references of one object read at most */
#define CHECK_EVERY 4096 /* items between looks at the clock */

#define TPF_MANAGED_WEAKREF 0x8
#define TPF_MANAGED_DICT 0x10
#define TPF_HEAPTYPE 0x200
#define TPF_HAVE_GC 0x4000
#define TPF_LIST_SUB (1ul << 25)
#define TPF_TUPLE_SUB (1ul << 26)
#define TPF_DICT_SUB (1ul << 29)
#define TPF_TYPE_SUB (1ul << 31)

/* Objects no one frees: skipped like big_objs()' _SKIP_TYPES. */
static const char *const skip_names[] = { "NoneType", "bool",
					  "NotImplementedType", "ellipsis",
					  "<dummy key> type" };

/* big_objs()' _BOUNDARY_TYPES, by the C types' tp_name. */
static const char *const boundary_names[] = {
	"type",
	"module",
	"function",
	"builtin_function_or_method",
	"method",
	"method-wrapper",
	"wrapper_descriptor",
	"method_descriptor",
	"classmethod_descriptor",
	"getset_descriptor",
	"member_descriptor",
	"code",
	"frame",
	"traceback",
	"staticmethod",
	"classmethod",
	"property",
};

static bool among(const char *name, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

#define AMONG(name, names) among(name, names, sizeof(names) / sizeof(*names))

static uint64_t word(const struct walk *w, uint64_t addr)
{
	uint64_t v = 0;

	return pyread__peek(w->r, addr, &v, sizeof(v)) ? 0 : v;
}

/* key -> val in one of the walk's tables. 0 or -ENOMEM. */
static int put(struct u64map *m, uint64_t key, uint64_t val)
{
	struct u64map_entry old;
	bool replaced;

	return u64map__put(m, key, val, 0, &old, &replaced);
}

/* ---- types ---------------------------------------------------------------- */

/* Is t (or a base) the one named full with this basicsize (0: any)? */
static bool derives(const struct walk *w, uint64_t t, const char *full,
		    uint64_t basicsize)
{
	char name[32];
	int depth;

	for (depth = 0; t && depth < 16; depth++, t = word(w, t + 0x100)) {
		uint64_t p = word(w, t + 0x18);

		if (p && !pyread__peek(w->r, p, name, sizeof(name)) &&
		    !strncmp(name, full, sizeof(name)) &&
		    (!basicsize || word(w, t + 0x20) == basicsize))
			return true;
	}
	return false;
}

/* t is a type object: its own type is type, or a metaclass. */
static bool is_type(const struct walk *w, uint64_t t)
{
	uint64_t meta = t ? word(w, t + 8) : 0;

	if (!meta)
		return false;
	return meta == w->r->types[PYT_TYPE] ||
	       (word(w, meta + 0xa8) & TPF_TYPE_SUB);
}

static enum gkind classify(const struct walk *w, uint64_t t,
			   const struct gtype *g)
{
	const uint64_t *types = w->r->types;

	if (!(g->flags & TPF_HEAPTYPE) && AMONG(g->name, skip_names))
		return GK_SKIP;
	if ((g->flags & TPF_TYPE_SUB) ||
	    (!(g->flags & TPF_HEAPTYPE) && AMONG(g->name, boundary_names)) ||
	    derives(w, t, "module", 0))
		return GK_BOUNDARY;
	if (derives(w, t, "numpy.ndarray", 96))
		return GK_ARRAY;
	/* a weak reference keeps nothing alive: gc does not follow it */
	if (derives(w, t, "weakref.ReferenceType", 0) ||
	    derives(w, t, "weakref", 0) || strstr(g->name, "weakproxy") ||
	    strstr(g->name, "ProxyType"))
		return GK_ATOMIC;
	if (g->flags & TPF_DICT_SUB)
		return GK_DICT;
	if (g->flags & TPF_LIST_SUB)
		return GK_LIST;
	if (g->flags & TPF_TUPLE_SUB)
		return GK_TUPLE;
	if (t == types[PYT_SET] || t == types[PYT_FROZENSET] ||
	    derives(w, t, "set", 0) || derives(w, t, "frozenset", 0))
		return GK_SET;
	if (!(g->flags & TPF_HAVE_GC))
		return GK_ATOMIC;
	return GK_OBJECT;
}

/* Read a new type object; -1 when t is not one. */
static int64_t add_type(struct walk *w, uint64_t t)
{
	struct gtype g = { .addr = t };
	char full[64] = "";
	uint64_t name = word(w, t + 0x18);
	const char *dot;
	size_t i;

	if (!is_type(w, t) || !name ||
	    pyread__peek(w->r, name, full, sizeof(full) - 1))
		return -1;
	for (i = 0; full[i]; i++)
		if ((unsigned char)full[i] < 0x20)
			return -1;
	dot = strrchr(full, '.');
	snprintf(g.name, sizeof(g.name), "%s", dot ? dot + 1 : full);
	g.basicsize = word(w, t + 0x20);
	g.itemsize = word(w, t + 0x28);
	g.flags = word(w, t + 0xa8);
	if (g.basicsize < 16 || g.basicsize > (1 << 20))
		return -1;
	g.kind = classify(w, t, &g);
	if (w->ntypes == w->tcap) {
		size_t cap = w->tcap ? 2 * w->tcap : 64;
		struct gtype *v = realloc(w->types, cap * sizeof(*v));

		if (!v)
			return -1;
		w->types = v, w->tcap = cap;
	}
	w->types[w->ntypes] = g;
	if (put(&w->typemap, t, w->ntypes + 1))
		return -1;
	return (int64_t)w->ntypes++;
}

/* The index of type t, read once per walk; -1 when not a type. */
static int64_t type_index(struct walk *w, uint64_t t)
{
	const struct u64map_entry *e = t ? u64map__get(&w->typemap, t) : NULL;

	if (e)
		return (int64_t)e->val - 1;
	return t ? add_type(w, t) : -1;
}

const struct gtype *walk__type(const struct walk *w, const struct gnode *n)
{
	return &w->types[n->type];
}

const struct gtype *walk__type_of(struct walk *w, uint64_t obj)
{
	int64_t t = type_index(w, word(w, obj + 8));

	return t < 0 ? NULL : &w->types[t];
}

/* ---- sizes ---------------------------------------------------------------- */

/* Immortal (3.12+: the low 32 bits read negative) or a small int. */
static bool immortal(const struct walk *w, const uint64_t *hdr)
{
	return w->r->rt.minor >= 12 && (int32_t)(uint32_t)hdr[0] < 0;
}

/* The references an object's count says it has (3.14 keeps flags above). */
static uint64_t refcount(const struct walk *w, const uint64_t *hdr)
{
	return w->r->rt.minor >= 12 ? (uint32_t)hdr[0] : hdr[0];
}

static uint64_t str_size(const struct walk *w, const uint64_t *hdr)
{
	uint32_t state = (uint32_t)hdr[4];
	unsigned kind = (state >> 2) & 7;
	int minor = w->r->rt.minor;

	if (!(state & 0x20)) /* legacy: its data is elsewhere */
		return minor <= 11 ? 0x50 : 0x40;
	if (state & 0x40)
		return w->r->rt.lay.ascii_data + hdr[2] + 1;
	return (minor <= 11 ? 0x48 : 0x38) + (hdr[2] + 1) * kind;
}

static uint64_t int_size(const struct walk *w, const uint64_t *hdr)
{
	int64_t n = (int64_t)hdr[2];

	if (w->r->rt.minor >= 12)
		return 0x18 + 4 * ((hdr[2] >> 3) ? (hdr[2] >> 3) : 1);
	return 0x18 + 4 * (uint64_t)(n < 0 ? -n : n);
}

/* sys.getsizeof of a dict: its keys when not shared, split values. */
static uint64_t dict_size(const struct walk *w, const struct gtype *g,
			  const uint64_t *hdr)
{
	uint64_t size = 16 + g->basicsize, keys = hdr[4], k[4];
	uint64_t n, usable;
	unsigned ix;

	if (!keys || pyread__peek(w->r, keys, k, sizeof(k)))
		return size;
	if (w->r->rt.minor <= 10) {
		n = k[1];
		if (!n || n > ((uint64_t)1 << 40))
			return size;
		ix = n <= 0xff ? 1 : n <= 0xffff ? 2 : n <= 0xffffffff ? 4 : 8;
		usable = 2 * n / 3;
		if (k[0] == 1 && !hdr[5])
			size += 0x28 + n * ix + usable * 24;
		else if (hdr[5])
			size += usable * 8;
		return size;
	}
	n = (uint64_t)1 << (k[1] & 0x3f);
	usable = 2 * n / 3;
	if ((k[1] & 0xff) > 40 || ((k[1] >> 8) & 0xff) > 43)
		return size;
	if ((uint32_t)k[0] == 1 && !hdr[5])
		size += 0x20 + ((uint64_t)1 << ((k[1] >> 8) & 0xff)) +
			usable * (((k[1] >> 16) & 0xff) == 0 ? 24 : 16);
	else if (hdr[5])
		size += usable * 9;
	return size;
}

/*
 * What sys.getsizeof says of the object (hdr: its first HDR bytes): the
 * object itself, its own arrays (list items, dict tables, array data),
 * the GC header and pre-header.
 */
static uint64_t obj_size(const struct walk *w, uint64_t obj,
			 const struct gtype *g, const uint64_t *hdr)
{
	const uint64_t *types = w->r->types;
	uint64_t gc = (g->flags & TPF_HAVE_GC) ? 16 : 0, t = g->addr;
	struct py_array a;
	int64_t n;

	if (t == types[PYT_STR])
		return str_size(w, hdr);
	if (t == types[PYT_INT])
		return int_size(w, hdr);
	if (t == types[PYT_BYTES])
		return 0x21 + hdr[2];
	if (t == types[PYT_BYTEARRAY]) /* 3.15: a bytes object holds it */
		return g->basicsize + hdr[3] +
		       (w->r->rt.minor >= 15 && hdr[3] ? 0x21 : 0);
	switch (g->kind) {
	case GK_ARRAY:
		if (pyread__array(w->r, obj, &a))
			return g->basicsize;
		return g->basicsize + 16 * a.nd + (a.owndata ? a.nbytes : 0);
	case GK_LIST:
		return gc + g->basicsize + 8 * hdr[4];
	case GK_DICT:
		return dict_size(w, g, hdr);
	case GK_SET:
		return gc + g->basicsize +
		       (hdr[5] != obj + 0x40 ? 16 * (hdr[4] + 1) : 0);
	default:
		break;
	}
	n = (int64_t)hdr[2];
	if (w->r->rt.minor >= 11 &&
	    (g->flags & (TPF_MANAGED_DICT | TPF_MANAGED_WEAKREF)))
		gc += 16;
	return gc + g->basicsize +
	       (g->itemsize ? g->itemsize * (uint64_t)(n < 0 ? -n : n) : 0);
}

/* ---- nodes ---------------------------------------------------------------- */

int walk__init(struct walk *w, const struct pyread *r, uint64_t budget_ns,
	       unsigned max_depth)
{
	memset(w, 0, sizeof(*w));
	w->r = r;
	w->deadline_ns = now_monotonic_ns() + budget_ns;
	w->max_depth = max_depth;
	w->tuple_items = r->rt.minor >= 14 ? 0x20 : 0x18;
	if (u64map__init(&w->index) || u64map__init(&w->typemap) ||
	    u64map__init(&w->bounds)) {
		walk__free(w);
		return -ENOMEM;
	}
	return 0;
}

void walk__free(struct walk *w)
{
	size_t i;

	u64map__free(&w->index);
	u64map__free(&w->typemap);
	u64map__free(&w->bounds);
	free(w->nodes);
	free(w->edges);
	free(w->types);
	free(w->roots);
	free(w->blocks);
	for (i = 0; i < w->nhistory; i++)
		free(w->history[i]);
	free(w->history);
	memset(w, 0, sizeof(*w));
}

int walk__boundary(struct walk *w, uint64_t obj)
{
	return obj ? put(&w->bounds, obj, 1) : 0;
}

/* What is known of an object before it becomes a node, or is folded. */
struct seen {
	uint64_t addr, size, refcnt;
	int64_t type;
	uint64_t hdr[HDR / 8];
};

/*
 * Read and check the header of the object at obj: aligned, readable, a
 * positive count, a real type. false: skip it (unreadable counted).
 */
static bool look(struct walk *w, uint64_t obj, struct seen *s)
{
	if (!obj || (obj & 7) || obj < 0x10000 || obj >= (1ull << 47))
		return false;
	s->addr = obj;
	if (pyread__peek(w->r, obj, s->hdr, sizeof(s->hdr)) &&
	    pyread__peek(w->r, obj, s->hdr, 32)) {
		w->unreadable++;
		return false;
	}
	s->type = type_index(w, s->hdr[1]);
	if (s->type < 0 || !s->hdr[0]) {
		w->unreadable++;
		return false;
	}
	s->refcnt = refcount(w, s->hdr);
	return true;
}

/* Small ints (-5..256) before 3.12 made them immortal: shared by all. */
static bool small_int(const struct walk *w, const struct seen *s)
{
	int64_t n = (int64_t)s->hdr[2];

	return w->types[s->type].addr == w->r->types[PYT_INT] &&
	       w->r->rt.minor <= 11 && n >= -1 && n <= 1 &&
	       (uint32_t)s->hdr[3] <= (n < 0 ? 5u : 256u);
}

static int64_t new_node(struct walk *w, const struct seen *s, uint32_t depth)
{
	const struct gtype *g = &w->types[s->type];
	struct gnode *n;
	struct py_array a;

	if (w->nnodes == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 1024;
		struct gnode *v = realloc(w->nodes, cap * sizeof(*v));

		if (!v)
			return -1;
		w->nodes = v, w->cap = cap;
	}
	n = &w->nodes[w->nnodes];
	memset(n, 0, sizeof(*n));
	n->addr = s->addr;
	n->size = s->size;
	n->refcnt = s->refcnt;
	n->type = (uint32_t)s->type;
	n->depth = depth;
	n->block = -1;
	n->state = g->kind == GK_ATOMIC ? GS_LEAF : GS_NEW;
	if (g->kind == GK_ARRAY && !pyread__array(w->r, s->addr, &a)) {
		n->view = a.base != 0;
		if (!a.base && !a.hasobject)
			n->state = GS_LEAF;
		if (a.owndata)
			n->buf = a.data, n->buf_bytes = a.nbytes;
	} else if (s->size >= WALK_LARGE) {
		n->buf = s->addr, n->buf_bytes = s->size;
		if (g->kind == GK_LIST)
			n->buf = s->hdr[3], n->buf_bytes = 8 * s->hdr[4];
		else if (g->addr == w->r->types[PYT_BYTEARRAY] &&
			 w->r->rt.minor >= 15 && s->hdr[7])
			n->buf = s->hdr[7], n->buf_bytes = 0x21 + s->hdr[3];
		else if (g->addr == w->r->types[PYT_BYTEARRAY])
			n->buf = s->hdr[4], n->buf_bytes = s->hdr[3];
	}
	if (put(&w->index, s->addr, w->nnodes + 1))
		return -1;
	return (int64_t)w->nnodes++;
}

int64_t walk__node(struct walk *w, uint64_t obj, uint32_t depth)
{
	const struct u64map_entry *e = u64map__get(&w->index, obj);
	struct seen s;
	uint8_t kind;

	if (e)
		return (int64_t)e->val - 1;
	if (u64map__get(&w->bounds, obj) || !look(w, obj, &s))
		return -1;
	kind = w->types[s.type].kind;
	if (kind <= GK_BOUNDARY || immortal(w, s.hdr) || small_int(w, &s))
		return -1;
	s.size = obj_size(w, obj, &w->types[s.type], s.hdr);
	return new_node(w, &s, depth);
}

int walk__root(struct walk *w, const char *label, uint32_t node, bool row,
	       uint64_t refs)
{
	struct groot *g;

	if (w->nroots == w->rcap) {
		size_t cap = w->rcap ? 2 * w->rcap : 64;
		struct groot *v = realloc(w->roots, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		w->roots = v, w->rcap = cap;
	}
	g = &w->roots[w->nroots++];
	memset(g, 0, sizeof(*g));
	snprintf(g->label, sizeof(g->label), "%s", label);
	g->node = node;
	g->row = row;
	w->nodes[node].indeg += refs;
	return 0;
}

/* ---- references ------------------------------------------------------------ */

/* A growing list of object addresses: one expansion's references. */
struct refs {
	uint64_t *v;
	size_t n, cap;
};

static int refs_room(struct refs *r, size_t more)
{
	if (r->n + more > r->cap) {
		size_t cap = r->cap ? r->cap : 256;
		uint64_t *v;

		while (cap < r->n + more)
			cap *= 2;
		v = realloc(r->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->v = v, r->cap = cap;
	}
	return 0;
}

static int refs_add(struct refs *r, uint64_t addr)
{
	if (!addr || refs_room(r, 1))
		return addr ? -ENOMEM : 0;
	r->v[r->n++] = addr;
	return 0;
}

/* A dict's keys and values (keys too: in-process lists them as well). */
static int dict_refs(struct walk *w, uint64_t d, struct refs *out)
{
	uint64_t used = word(w, d + 0x10);
	struct py_item *items;
	int n, i;

	if (used > ITEMS_MAX)
		return -EIO;
	items = malloc((used + 64) * sizeof(*items));
	if (!items)
		return -ENOMEM;
	n = pyread__dict_items(w->r, d, items, (int)used + 64);
	if (n > 0 && refs_room(out, 2 * (size_t)n))
		n = -ENOMEM;
	for (i = 0; i < n; i++) {
		out->v[out->n++] = items[i].key;
		out->v[out->n++] = items[i].value;
	}
	free(items);
	return n < 0 ? n : 0;
}

/* A list's or tuple's items, or a set's keys. */
static int seq_refs(struct walk *w, uint64_t obj, uint8_t kind,
		    struct refs *out)
{
	uint64_t n = word(w, obj + 0x10);
	int got;

	if (kind == GK_SET)
		n = word(w, obj + 0x20) + 1; /* mask + 1 slots */
	if (n > ITEMS_MAX || refs_room(out, n + 1))
		return n > ITEMS_MAX ? -EIO : -ENOMEM;
	if (kind == GK_SET)
		got = pyread__set_items(w->r, obj, out->v + out->n, (int)n);
	else if (kind == GK_TUPLE)
		got = pyread__read(w->r, obj + w->tuple_items, out->v + out->n,
				   8 * n)
			      ? -EIO
			      : (int)n;
	else
		got = pyread__seq_items(w->r, obj, out->v + out->n, (int)n);
	if (got < 0 && kind == GK_LIST) /* a subclass: read as a list */
		got = -EIO;
	if (got > 0)
		out->n += got;
	return got < 0 ? got : 0;
}

/* An array's base (first: it makes a view) and object elements. */
static int array_refs(struct walk *w, uint64_t obj, struct refs *out)
{
	struct py_array a;
	uint64_t n;

	if (pyread__array(w->r, obj, &a))
		return -EIO;
	if (a.base && refs_add(out, a.base))
		return -ENOMEM;
	if (!a.hasobject || !a.owndata)
		return 0;
	n = a.nbytes / 8;
	if (n > ITEMS_MAX || refs_room(out, n))
		return n > ITEMS_MAX ? -EIO : -ENOMEM;
	if (pyread__read(w->r, a.data, out->v + out->n, 8 * n))
		return -EIO;
	out->n += n;
	return 0;
}

/* An instance's attributes: its dict object, or the values themselves. */
static int attr_refs(struct walk *w, uint64_t obj, struct refs *out)
{
	struct py_item items[512];
	uint64_t dict = pyread__attrs_dict(w->r, obj);
	int n, i;

	if (dict)
		return refs_add(out, dict);
	n = pyread__attrs(w->r, obj, items, 512);
	for (i = 0; i < n; i++)
		if (refs_add(out, items[i].value))
			return -ENOMEM;
	return n == -ENOENT ? 0 : n < 0 ? n : 0;
}

/*
 * The words of an object of unknown layout that point at objects
 * (Cython fields: pandas' blocks, axes, values): a conservative scan of
 * its body, skipping its dict and weakref slots.
 */
static int scan_refs(struct walk *w, uint64_t obj, const struct gtype *g,
		     struct refs *out)
{
	uint64_t body[SCAN_MAX / 8], size = g->basicsize, off;
	uint64_t dictoff = word(w, g->addr + 0x120);
	uint64_t weakoff = word(w, g->addr + 0xd0);
	struct seen s;

	if (size > SCAN_MAX)
		size = SCAN_MAX;
	if (size <= 16 || pyread__peek(w->r, obj + 16, body, size - 16))
		return 0;
	for (off = 16; off < size; off += 8) {
		uint64_t v = body[(off - 16) / 8];
		uint64_t unread = w->unreadable;

		if (off == dictoff || off == weakoff || v == obj)
			continue;
		if (u64map__get(&w->index, v) || look(w, v, &s)) {
			if (refs_add(out, v))
				return -ENOMEM;
		}
		w->unreadable = unread; /* a word that is no pointer */
	}
	return 0;
}

/* Everything obj references, by its kind. */
static int references(struct walk *w, uint64_t obj, const struct gtype *g,
		      struct refs *out)
{
	int err = 0;

	switch (g->kind) {
	case GK_DICT:
		err = dict_refs(w, obj, out);
		break;
	case GK_LIST:
	case GK_TUPLE:
	case GK_SET:
		err = seq_refs(w, obj, g->kind, out);
		break;
	case GK_ARRAY:
		return array_refs(w, obj, out);
	case GK_OBJECT:
		err = attr_refs(w, obj, out);
		if (!err)
			err = scan_refs(w, obj, g, out);
		return err;
	default:
		return 0;
	}
	if (!err && (g->flags & TPF_HEAPTYPE))
		err = attr_refs(w, obj, out);
	return err;
}

/* ---- the walk ------------------------------------------------------------- */

static bool late(struct walk *w)
{
	if (now_monotonic_ns() < w->deadline_ns)
		return false;
	w->stopped = "time";
	return true;
}

static int add_edge(struct walk *w, uint32_t kid)
{
	if (w->nedges == w->ecap) {
		size_t cap = w->ecap ? 2 * w->ecap : 4096;
		uint32_t *v = realloc(w->edges, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		w->edges = v, w->ecap = cap;
	}
	w->edges[w->nedges++] = kid;
	return 0;
}

/* A kid of the node being expanded: counted, listed once. */
static int link(struct walk *w, int64_t k)
{
	struct gnode *kid = &w->nodes[k];

	kid->indeg++;
	if (kid->mark == w->expansions)
		return 0;
	kid->mark = w->expansions;
	return add_edge(w, (uint32_t)k);
}

/*
 * One reference from node i (or what is folded into it): to a node, to
 * an object only i holds (its bytes folded into i; a container's own
 * references go on the work list), or to nothing the walk counts.
 */
static int take(struct walk *w, uint32_t i, uint64_t ref, bool keep,
		struct refs *work)
{
	const struct u64map_entry *e = u64map__get(&w->index, ref);
	const struct gtype *g;
	struct seen s;
	int64_t k;

	if (e)
		return link(w, (int64_t)e->val - 1);
	if (u64map__get(&w->bounds, ref) || !look(w, ref, &s))
		return 0;
	g = &w->types[s.type];
	if (g->kind <= GK_BOUNDARY || immortal(w, s.hdr) || small_int(w, &s))
		return 0;
	s.size = obj_size(w, ref, g, s.hdr);
	if (!keep && s.refcnt == 1 && s.size < WALK_LARGE) {
		if (g->kind == GK_ATOMIC) {
			w->nodes[i].size += s.size;
			return 0;
		}
		if (g->kind >= GK_DICT &&
		    !(g->kind <= GK_SET && s.hdr[2] >= FAST_MIN)) {
			w->nodes[i].size += s.size;
			return refs_add(work, ref);
		}
	}
	k = new_node(w, &s, w->nodes[i].depth + 1);
	return k < 0 ? -ENOMEM : link(w, k);
}

/*
 * List node i's kids: its references and those of the containers folded
 * into it. false when they could not all be read (torn, gone, budget).
 */
static bool expand(struct walk *w, uint32_t i)
{
	struct refs refs = { 0 }, work = { 0 };
	uint64_t obj = w->nodes[i].addr;
	bool whole = true, first = true;
	size_t j, done = 0;

	w->expansions++;
	w->nodes[i].kid0 = (uint32_t)w->nedges;
	for (;;) {
		const struct gtype *g = walk__type_of(w, obj);

		refs.n = 0;
		if (!g || references(w, obj, g, &refs))
			whole = false;
		for (j = 0; j < refs.n; j++) {
			/* an array's base stays a node: the view's kids[0] */
			bool keep = first && j == 0 && w->nodes[i].view;

			if (take(w, i, refs.v[j], keep, &work))
				whole = false;
			if (!(j % CHECK_EVERY) && j && late(w)) {
				whole = false;
				break;
			}
		}
		first = false;
		if (w->stopped || done == work.n)
			break;
		obj = work.v[done++];
	}
	w->nodes[i].nkids = (uint32_t)(w->nedges - w->nodes[i].kid0);
	free(refs.v);
	free(work.v);
	return whole;
}

void walk__run(struct walk *w)
{
	bool whole;
	size_t i;

	for (i = 0; i < w->nnodes; i++) {
		struct gnode *n = &w->nodes[i];

		if (w->stopped) {
			if (n->state == GS_NEW)
				n->state = GS_PARTIAL;
			continue;
		}
		if (n->state != GS_NEW)
			continue;
		if (n->depth >= w->max_depth) {
			n->state = GS_CUT;
			w->cut_depth = true;
			continue;
		}
		whole = expand(w, (uint32_t)i);
		w->nodes[i].state = whole ? GS_DONE : GS_PARTIAL;
		/* reads fail once it is gone; a zombie still answers kill 0 */
		if (!w->stopped && (!whole || !(i % 256)) &&
		    procs__exiting(w->r->pid))
			w->stopped = "exited";
		if (!(i % 64) && !w->stopped)
			late(w);
	}
}
