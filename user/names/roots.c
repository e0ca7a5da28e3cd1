// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "roots.h"

#define NS_MAX (1 << 20) /* names of a namespace read at most */
#define HISTORY_MAX 100000 /* cells of _ih kept */
#define CELL_TEXT (256u << 10) /* bytes of a cell's source kept */
#define MODULES_MAX 65536

/* One binding of a root: names.py's roots[label] = [obj, refs, is_row]. */
struct binding {
	char label[96];
	uint64_t obj, refs;
	bool row;
};

struct bindings {
	struct binding *v;
	size_t n, cap;
};

/* The namespace's names as text, with their values. */
struct names {
	struct py_item *items;
	char (*text)[96]; /* "" for a key that is not a str */
	int n;
};

/* IPython's public-looking internals: walked, never rows (_IPYTHON_NAMES). */
static const char *const ipython_names[] = { "In", "Out", "exit", "quit",
					     "get_ipython" };

static bool is_output_name(const char *name)
{
	return !strcmp(name, "_") || !strcmp(name, "__") ||
	       !strcmp(name, "___");
}

/* `_7`: an alias of Out[7]. Its number, or -1. */
static long output_number(const char *name)
{
	char *end;
	long n;

	if (name[0] != '_' || name[1] < '0' || name[1] > '9')
		return -1;
	n = strtol(name + 1, &end, 10);
	return *end ? -1 : n;
}

/* names.py's _row_name: is this global name a row of the table? */
static bool row_name(const char *name)
{
	size_t i;

	if (is_output_name(name))
		return true;
	if (name[0] == '_')
		return false;
	for (i = 0; i < sizeof(ipython_names) / sizeof(*ipython_names); i++)
		if (!strcmp(name, ipython_names[i]))
			return false;
	return true;
}

static struct binding *find(struct bindings *b, const char *label)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (!strcmp(b->v[i].label, label))
			return &b->v[i];
	return NULL;
}

/* roots[label] = [obj, refs, row], replacing one of the same label. */
static int bind(struct bindings *b, const char *label, uint64_t obj,
		uint64_t refs, bool row)
{
	struct binding *e = find(b, label);

	if (!e) {
		if (b->n == b->cap) {
			size_t cap = b->cap ? 2 * b->cap : 256;
			struct binding *v = realloc(b->v, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			b->v = v, b->cap = cap;
		}
		e = &b->v[b->n++];
		snprintf(e->label, sizeof(e->label), "%s", label);
	}
	e->obj = obj, e->refs = refs, e->row = row;
	return 0;
}

static int read_names(const struct pyread *r, uint64_t dict, struct names *ns)
{
	uint64_t used = 0;
	int i;

	memset(ns, 0, sizeof(*ns));
	if (pyread__read(r, dict + 0x10, &used, sizeof(used)) || used > NS_MAX)
		return -ENOENT;
	ns->items = malloc((used + 64) * sizeof(*ns->items));
	ns->text = malloc((used + 64) * sizeof(*ns->text));
	if (!ns->items || !ns->text)
		return -ENOMEM;
	ns->n = pyread__dict_items(r, dict, ns->items, (int)used + 64);
	if (ns->n < 0)
		return -ENOENT;
	for (i = 0; i < ns->n; i++)
		if (pyread__str(r, ns->items[i].key, ns->text[i],
				sizeof(ns->text[i])) < 0)
			ns->text[i][0] = '\0';
	return 0;
}

static void free_names(struct names *ns)
{
	free(ns->items);
	free(ns->text);
}

static uint64_t name_value(const struct names *ns, const char *name)
{
	int i;

	for (i = 0; i < ns->n; i++)
		if (!strcmp(ns->text[i], name))
			return ns->items[i].value;
	return 0;
}

/* One entry of Out: its number, its object. */
struct out_entry {
	int64_t n;
	uint64_t value;
};

/*
 * Out's entries (a dict with int keys), each key read once: the `_N`
 * aliases, user_ns_hidden and the last result all look them up.
 */
static int out_items(const struct walk *w, uint64_t out,
		     struct out_entry **entries)
{
	uint64_t used = 0;
	struct py_item *items;
	int n, i, k = 0;

	*entries = NULL;
	if (!out || pyread__type(w->r, out) != PYT_DICT ||
	    pyread__read(w->r, out + 0x10, &used, sizeof(used)) ||
	    used > NS_MAX)
		return 0;
	items = malloc((used + 16) * sizeof(*items));
	*entries = malloc((used + 16) * sizeof(**entries));
	if (!items || !*entries) {
		free(items);
		return -ENOMEM;
	}
	n = pyread__dict_items(w->r, out, items, (int)used + 16);
	for (i = 0; i < n; i++)
		if (!pyread__long(w->r, items[i].key, &(*entries)[k].n))
			(*entries)[k++].value = items[i].value;
	free(items);
	return k;
}

/* Out[n]'s object, or 0. */
static uint64_t out_get(const struct out_entry *o, int no, long n)
{
	int i;

	for (i = 0; i < no; i++)
		if (o[i].n == n)
			return o[i].value;
	return 0;
}

/* The global names, then each Out[N] with its `_N` alias (_bindings). */
static int bind_names(const struct names *ns, uint64_t out,
		      const struct out_entry *o, int no, struct bindings *b)
{
	char label[96], alias[32];
	int i, err = 0;

	for (i = 0; !err && i < ns->n; i++) {
		const char *name = ns->text[i];
		uint64_t v = ns->items[i].value;
		long k = output_number(name);

		if (!name[0] || (out && v == out))
			continue;
		if (out && k >= 0 && out_get(o, no, k) == v)
			continue; /* counted with Out[N] below */
		err = bind(b, name, v, 1, row_name(name));
	}
	for (i = 0; !err && i < no; i++) {
		snprintf(alias, sizeof(alias), "_%lld", (long long)o[i].n);
		snprintf(label, sizeof(label), "Out[%lld]", (long long)o[i].n);
		err = bind(b, label, o[i].value,
			   1 + (name_value(ns, alias) == o[i].value), true);
	}
	return err;
}

/* An attribute of IPython's shell: its __dict__ or its traits' values. */
static uint64_t shell_attr(const struct walk *w, uint64_t shell,
			   const char *name)
{
	uint64_t v = pyread__attr(w->r, shell, name), traits;

	if (v)
		return v;
	traits = pyread__attr(w->r, shell, "_trait_values");
	if (traits && pyread__type(w->r, traits) == PYT_DICT)
		return pyread__dict_get(w->r, traits, name);
	return 0;
}

/* The shell get_ipython is bound to (a method: im_self at +0x18), or 0. */
static uint64_t find_shell(struct walk *w, const struct names *ns)
{
	uint64_t m = name_value(ns, "get_ipython"), self = 0;
	const struct gtype *t = m ? walk__type_of(w, m) : NULL;

	if (t && !strcmp(t->name, "method"))
		pyread__read(w->r, m + 0x18, &self, sizeof(self));
	return self;
}

/* The displayhook's `_`, `__`, `___` hold the same objects. */
static void bind_displayhook(struct walk *w, uint64_t hook, struct bindings *b)
{
	static const char *const names[] = { "_", "__", "___" };
	size_t i;

	for (i = 0; hook && i < 3; i++) {
		struct binding *e = find(b, names[i]);

		if (e && pyread__attr(w->r, hook, names[i]) == e->obj)
			e->refs++;
	}
}

/* user_ns_hidden keeps `_`, `_N` too; what only it holds is a root. */
static int bind_hidden(struct walk *w, uint64_t hidden, bool have_out,
		       struct bindings *b)
{
	struct names h;
	char label[96];
	int i, err = 0;

	if (!hidden || pyread__type(w->r, hidden) != PYT_DICT ||
	    read_names(w->r, hidden, &h)) {
		return 0;
	}
	for (i = 0; !err && i < h.n; i++) {
		const char *name = h.text[i];
		uint64_t v = h.items[i].value;
		struct binding *e;
		char text[4];

		if (is_output_name(name))
			snprintf(label, sizeof(label), "%s", name);
		else if (have_out && output_number(name) >= 0)
			snprintf(label, sizeof(label), "Out[%ld]",
				 output_number(name));
		else
			continue;
		e = find(b, label);
		if (e && e->obj == v) {
			e->refs++;
		} else if (pyread__str(w->r, v, text, sizeof(text)) == 0) {
			continue; /* what %reset out puts back */
		} else {
			snprintf(label, sizeof(label), "user_ns_hidden['%s']",
				 name);
			err = bind(b, label, v, 1, true);
		}
	}
	free_names(&h);
	return err;
}

/* The last execution result: one more reference to the newest Out[N]. */
static void bind_last(struct walk *w, uint64_t shell, const struct out_entry *o,
		      int no, struct bindings *b)
{
	uint64_t er = shell_attr(w, shell, "last_execution_result");
	uint64_t last = er ? pyread__attr(w->r, er, "result") : 0;
	int64_t best = -1;
	char label[64];
	int i;

	for (i = 0; last && i < no; i++)
		if (o[i].value == last && o[i].n > best)
			best = o[i].n;
	snprintf(label, sizeof(label), "Out[%lld]", (long long)best);
	if (best >= 0 && find(b, label))
		find(b, label)->refs++;
}

/* sys.modules, every module's dict, builtins: never walked through. */
static void bound_modules(struct walk *w)
{
	const struct pyread *r = w->r;
	uint64_t interp = 0, modules = 0;
	struct py_item *m = malloc(MODULES_MAX * sizeof(*m));
	int n, i;

	pyread__read(r, r->rt.runtime + r->rt.lay.interp_head, &interp, 8);
	if (interp)
		pyread__read(r, interp + r->modules, &modules, 8);
	walk__boundary(w, modules);
	n = m && modules ? pyread__dict_items(r, modules, m, MODULES_MAX) : 0;
	for (i = 0; i < n; i++) {
		uint64_t d = 0;

		if (pyread__type(r, m[i].value) == PYT_MODULE &&
		    !pyread__read(r, m[i].value + 0x10, &d, 8))
			walk__boundary(w, d);
	}
	free(m);
}

/* IPython's own objects: the shell and its namespaces (_boundary_ids). */
static void bound_shell(struct walk *w, uint64_t shell)
{
	static const char *const attrs[] = { "user_ns", "user_global_ns",
					     "user_ns_hidden", "displayhook",
					     "history_manager" };
	size_t i;

	walk__boundary(w, shell);
	for (i = 0; shell && i < sizeof(attrs) / sizeof(*attrs); i++)
		walk__boundary(w, shell_attr(w, shell, attrs[i]));
}

/* _ih: the cells' transformed sources, index = cell number. */
static void read_history(struct walk *w, uint64_t ih)
{
	uint64_t n = 0, *items;
	char *text;
	size_t i;
	int got;

	if (!ih || pyread__type(w->r, ih) != PYT_LIST ||
	    pyread__read(w->r, ih + 0x10, &n, 8) || n > HISTORY_MAX)
		return;
	items = malloc((n + 1) * sizeof(*items));
	w->history = calloc(n + 1, sizeof(*w->history));
	got = items && w->history ? pyread__seq_items(w->r, ih, items, (int)n)
				  : -ENOMEM;
	for (i = 0; got > 0 && i < (size_t)got; i++) {
		text = malloc(CELL_TEXT);
		if (text && pyread__str(w->r, items[i], text, CELL_TEXT) >= 0)
			w->history[i] = realloc(text, strlen(text) + 1);
		else
			free(text);
	}
	w->nhistory = got > 0 ? (size_t)got : 0;
	free(items);
}

/* Each distinct object gets a node and its labels (names.py's _roots). */
static int add_roots(struct walk *w, const struct bindings *b)
{
	size_t i;
	int err = 0;

	for (i = 0; !err && i < b->n; i++) {
		const struct binding *e = &b->v[i];
		int64_t node = walk__node(w, e->obj, 0);

		if (node >= 0)
			err = walk__root(w, e->label, (uint32_t)node, e->row,
					 e->refs);
	}
	return err;
}

int roots__read(struct walk *w, uint64_t ns)
{
	struct bindings b = { 0 };
	struct out_entry *o = NULL;
	struct names names;
	uint64_t out, shell;
	int no, err;

	err = read_names(w->r, ns, &names);
	if (err) {
		free_names(&names);
		return err;
	}
	out = name_value(&names, "Out");
	if (out && pyread__type(w->r, out) != PYT_DICT)
		out = 0;
	no = out_items(w, out, &o);
	shell = find_shell(w, &names);
	walk__boundary(w, ns);
	walk__boundary(w, out);
	bound_modules(w);
	bound_shell(w, shell);
	err = no < 0 ? no : bind_names(&names, out, o, no, &b);
	if (!err && shell) {
		bind_displayhook(w, shell_attr(w, shell, "displayhook"), &b);
		err = bind_hidden(w, shell_attr(w, shell, "user_ns_hidden"),
				  out != 0, &b);
		if (out)
			bind_last(w, shell, o, no, &b);
	}
	read_history(w, name_value(&names, "_ih"));
	if (!err)
		err = add_roots(w, &b);
	free(b.v);
	free(o);
	free_names(&names);
	return err;
}

/* ---- summaries ------------------------------------------------------------ */

/* "(1000,)" or "(3, 4)": a shape as Python prints a tuple. */
static void shape_text(const uint64_t *dims, int nd, char *buf, size_t size)
{
	size_t at = 0;
	int i;

	at += snprintf(buf, size, "(");
	for (i = 0; i < nd && at < size; i++)
		at += snprintf(buf + at, size - at, "%s%llu", i ? ", " : "",
			       (unsigned long long)dims[i]);
	if (at < size)
		snprintf(buf + at, size - at, nd == 1 ? ",)" : ")");
}

/* len() of a pandas Index: its _data array, or a RangeIndex's range. */
static int64_t index_len(struct walk *w, uint64_t idx)
{
	uint64_t data = pyread__attr(w->r, idx, "_data"), range, len = 0;
	struct py_array a;
	int64_t n;

	if (data && !pyread__array(w->r, data, &a) && a.nd == 1)
		return (int64_t)a.dims[0];
	range = pyread__attr(w->r, idx, "_range");
	if (range && !pyread__read(w->r, range + 0x28, &len, 8) &&
	    !pyread__long(w->r, len, &n))
		return n;
	return -1;
}

/* The i-th item of a list or tuple, or 0. */
static uint64_t item(struct walk *w, uint64_t seq, int i)
{
	uint64_t v[8];
	int n = pyread__seq_items(w->r, seq, v, 8);

	return i < n ? v[i] : 0;
}

/* A DataFrame's (rows, columns) and a Series' (rows,): from _mgr.axes. */
static void pandas_shape(struct walk *w, uint64_t obj, const char *type,
			 char *buf, size_t size)
{
	uint64_t mgr = pyread__attr(w->r, obj, "_mgr"), axes = 0;
	int64_t rows, cols;

	if (!mgr)
		return;
	axes = pyread__attr(w->r, mgr, "axes"); /* SingleBlockManager */
	if (!axes) /* BlockManager: a Cython field */
		pyread__read(w->r, mgr + 0x20, &axes, 8);
	if (!axes || pyread__type(w->r, axes) != PYT_LIST)
		return;
	if (!strcmp(type, "Series")) {
		rows = index_len(w, item(w, axes, 0));
		if (rows >= 0)
			snprintf(buf, size, "(%lld,)", (long long)rows);
		return;
	}
	cols = index_len(w, item(w, axes, 0));
	rows = index_len(w, item(w, axes, 1));
	if (rows >= 0 && cols >= 0)
		snprintf(buf, size, "(%lld, %lld)", (long long)rows,
			 (long long)cols);
}

/* names.py's _summary for one root's object. */
static void summary(struct walk *w, uint64_t obj, char *buf, size_t size)
{
	const struct gtype *t = walk__type_of(w, obj);
	enum py_type pt = pyread__type(w->r, obj);
	char shape[48];
	struct py_array a;
	uint64_t len = 0;

	buf[0] = '\0';
	if (!t)
		return;
	if (t->kind == GK_ARRAY && !pyread__array(w->r, obj, &a)) {
		shape_text(a.dims, a.nd < PY_ARRAY_DIMS ? a.nd : PY_ARRAY_DIMS,
			   shape, sizeof(shape));
		snprintf(buf, size, "%s %s", a.dtype, shape);
	} else if (!strcmp(t->name, "DataFrame") || !strcmp(t->name, "Serie"
								     "s")) {
		pandas_shape(w, obj, t->name, buf, size);
	} else if (!strcmp(t->name, "Index")) {
		int64_t n = index_len(w, obj);

		if (n >= 0)
			snprintf(buf, size, "(%lld,)", (long long)n);
	} else if (pt == PYT_LIST || pt == PYT_TUPLE || pt == PYT_DICT ||
		   pt == PYT_SET || pt == PYT_FROZENSET || pt == PYT_STR ||
		   pt == PYT_BYTES || pt == PYT_BYTEARRAY) {
		/* ob_size, ma_used, a set's used, a str's length */
		pyread__read(w->r,
			     obj + (pt == PYT_SET || pt == PYT_FROZENSET
					    ? 0x18
					    : 0x10),
			     &len, 8);
		snprintf(buf, size, "len %llu", (unsigned long long)len);
	}
}

void roots__summaries(struct walk *w)
{
	size_t i;

	for (i = 0; i < w->nroots; i++)
		if (w->roots[i].row)
			summary(w, w->nodes[w->roots[i].node].addr,
				w->roots[i].summary,
				sizeof(w->roots[i].summary));
}
