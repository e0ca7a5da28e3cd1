// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The walk of a live Python's objects from outside (user/names/walk.c):
 * a child on each interpreter (pyenv 3.8, 3.10, 3.12, 3.13, Debian's 3.11
 * with numpy and pandas, sid's 3.14 and 3.15) sets known globals and
 * prints the sizes it measures itself (sys.getsizeof); the walk must give
 * exactly those.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include "names/pyread.h"
#include "names/roots.h"
#include "names/walk.h"
#include "names_child.h"
#include "unit.h"

static const char code[] = "import sys, time, json, weakref\n"
			   "e = {}\n"
			   "b3 = bytes(3_000_000)\n"
			   "e['b3'] = sys.getsizeof(b3)\n"
			   "ba = bytearray(2_000_000)\n"
			   "e['ba'] = sys.getsizeof(ba)\n"
			   "flts = [float(i) + 0.5 for i in range(100_000)]\n"
			   "e['flts'] = sys.getsizeof(flts) + 100_000 * "
			   "sys.getsizeof(0.5)\n"
			   "e['float'] = sys.getsizeof(0.5)\n"
			   "one = bytes(1_000_000)\n"
			   "dd = {'k1': one, 'k2': one}\n"
			   "del one\n"
			   "class Holder:\n"
			   "    pass\n"
			   "h = Holder()\n"
			   "h.payload = bytearray(500_000)\n"
			   "e['payload'] = sys.getsizeof(h.payload)\n"
			   "class Slotted:\n"
			   "    __slots__ = ('data',)\n"
			   "s = Slotted()\n"
			   "s.data = bytearray(600_000)\n"
			   "e['slot'] = sys.getsizeof(s.data)\n"
			   "def link(inner):\n"
			   "    return [bytes(300_000), inner] + [None] * 510\n"
			   "chain = link(link(link(link([bytes(300_000)]))))\n"
			   "class W:\n"
			   "    pass\n"
			   "wt = W()\n"
			   "wt.blob = bytearray(400_000)\n"
			   "wr = weakref.ref(wt)\n"
			   "del wt\n"
			   "wt2 = W()\n"
			   "wt2.blob = bytearray(400_000)\n"
			   "wr2 = weakref.ref(wt2)\n"
			   "held = bytearray(300_000)\n"
			   "def f(x=held):\n"
			   "    return x\n"
			   "alone = bytearray(300_000)\n"
			   "try:\n"
			   "    import numpy as np, pandas as pd\n"
			   "    arr = np.ones(100_000)\n"
			   "    v = arr[::2]\n"
			   "    df = pd.DataFrame({'p': np.arange(50_000.0),\n"
			   "                       'q': np.arange(50_000)})\n"
			   "    e['df'] = "
			   "int(df.memory_usage(index=False).sum())\n"
			   "except ImportError:\n"
			   "    pass\n"
			   "print('ready', json.dumps(e), flush=True)\n"
			   "time.sleep(30)\n";

struct fixture {
	struct child c;
	struct pyread r;
	struct walk w;
};

/* Read the child's roots and walk them (max_depth, budget). */
static void walk_child(struct fixture *f, uint64_t budget_ns,
		       unsigned max_depth)
{
	uint64_t ns;
	int err;

	err = pyread__open(&f->r, f->c.pid);
	cr_assert_eq(err, 0, "pyread__open: %d", err);
	cr_assert_eq(pyread__main_dict(&f->r, &ns), 0);
	cr_assert_eq(walk__init(&f->w, &f->r, budget_ns, max_depth), 0);
	cr_assert_eq(roots__read(&f->w, ns), 0);
	walk__run(&f->w);
}

static void done(struct fixture *f)
{
	walk__free(&f->w);
	pyread__close(&f->r);
	child_stop(&f->c);
}

/* The node of root label, or NULL. */
static const struct gnode *root(const struct walk *w, const char *label)
{
	size_t i;

	for (i = 0; i < w->nroots; i++)
		if (!strcmp(w->roots[i].label, label))
			return &w->nodes[w->roots[i].node];
	return NULL;
}

static const struct gnode *need_root(const struct walk *w, const char *label)
{
	const struct gnode *n = root(w, label);

	cr_assert(n, "no root %s", label);
	return n;
}

static const char *tname(const struct walk *w, const struct gnode *n)
{
	return walk__type(w, n)->name;
}

static const struct gnode *kid(const struct walk *w, const struct gnode *n,
			       uint32_t k)
{
	cr_assert_lt(k, n->nkids);
	return &w->nodes[w->edges[n->kid0 + k]];
}

/* n's only kid of type name (asserts there is exactly one). */
static const struct gnode *only_kid(const struct walk *w, const struct gnode *n,
				    const char *type)
{
	const struct gnode *found = NULL;
	uint32_t k;

	for (k = 0; k < n->nkids; k++)
		if (!strcmp(tname(w, kid(w, n, k)), type)) {
			cr_assert_null(found, "two %s kids", type);
			found = kid(w, n, k);
		}
	cr_assert(found, "no %s kid", type);
	return found;
}

/* Sum of the sizes of nodes of type name reachable from n (marks used). */
static uint64_t reach_sum(const struct walk *w, const struct gnode *n,
			  const char *type, bool *seen)
{
	size_t i = (size_t)(n - w->nodes);
	uint64_t sum;
	uint32_t k;

	if (seen[i])
		return 0;
	seen[i] = true;
	sum = strcmp(tname(w, n), type) ? 0 : n->size;
	for (k = 0; k < n->nkids; k++)
		sum += reach_sum(w, kid(w, n, k), type, seen);
	return sum;
}

static void check_sizes(const struct fixture *f)
{
	const struct walk *w = &f->w;
	const struct gnode *n, *k;

	cr_assert_null(w->stopped);
	cr_assert_not(w->cut_depth);
	n = need_root(w, "b3");
	cr_assert_str_eq(tname(w, n), "bytes");
	cr_assert_eq(n->size, 3000033);
	cr_assert_eq(n->size, child_num(&f->c, "b3"));
	cr_assert_eq(n->state, GS_LEAF);
	n = need_root(w, "ba");
	cr_assert_eq(n->size, child_num(&f->c, "ba"), "ba %llu != %lld",
		     (unsigned long long)n->size, child_num(&f->c, "ba"));
	/* 100,000 floats folded into their list */
	n = need_root(w, "flts");
	cr_assert_eq(child_num(&f->c, "float"), 24);
	cr_assert_eq(n->size, child_num(&f->c, "flts"), "flts %llu != %lld",
		     (unsigned long long)n->size, child_num(&f->c, "flts"));
	cr_assert_eq(n->nkids, 0);
	cr_assert_eq(n->state, GS_DONE);
	/* one bytes object under two keys: one kid, two references */
	n = need_root(w, "dd");
	k = only_kid(w, n, "bytes");
	cr_assert_eq(k->size, 1000033);
	cr_assert_eq(k->indeg, 2);
	cr_assert_eq(k->refcnt, 2);
	/* an instance attribute: managed/inline values or __dict__ */
	n = need_root(w, "h");
	cr_assert_str_eq(tname(w, n), "Holder");
	k = only_kid(w, n, "bytearray");
	cr_assert_eq(k->size, child_num(&f->c, "payload"));
	/* __slots__: found by the word scan */
	n = need_root(w, "s");
	k = only_kid(w, n, "bytearray");
	cr_assert_eq(k->size, child_num(&f->c, "slot"));
	/* a weak reference reaches nothing */
	n = need_root(w, "wr");
	cr_assert_eq(n->nkids, 0);
	cr_assert_eq(n->state, GS_LEAF);
	n = need_root(w, "wr2");
	cr_assert_eq(n->nkids, 0);
	k = only_kid(w, need_root(w, "wt2"), "bytearray");
	cr_assert_eq(k->indeg, 1);
	/* held outside (a function's defaults), or by its name only */
	n = need_root(w, "held");
	cr_assert_eq(n->refcnt, 2);
	cr_assert_eq(n->indeg, 1);
	cr_assert_gt(n->refcnt, n->indeg);
	n = need_root(w, "alone");
	cr_assert_eq(n->refcnt, 1);
	cr_assert_eq(n->indeg, 1);
	n = need_root(w, "b3");
	cr_assert_eq(n->refcnt, n->indeg);
	/* the whole chain: five levels, five bytes */
	n = need_root(w, "chain");
	{
		bool *seen = calloc(w->nnodes, 1);

		cr_assert_eq(reach_sum(w, n, "bytes", seen), 5 * 300033ull);
		free(seen);
	}
}

static void check_numpy(const struct fixture *f)
{
	const struct walk *w = &f->w;
	const struct gnode *a, *v, *df;
	bool *seen;
	uint64_t sum;

	a = need_root(w, "arr");
	cr_assert_str_eq(tname(w, a), "ndarray");
	cr_assert_not(a->view);
	cr_assert_geq(a->size, 800000);
	v = need_root(w, "v");
	cr_assert(v->view);
	cr_assert_geq(v->nkids, 1);
	cr_assert_eq(kid(w, v, 0), a, "a view's first kid is its base");
	cr_assert_lt(v->size, 1024);
	df = need_root(w, "df");
	cr_assert_str_eq(tname(w, df), "DataFrame");
	cr_assert_gt(child_num(&f->c, "df"), 0);
	seen = calloc(w->nnodes, 1);
	sum = reach_sum(w, df, "ndarray", seen);
	free(seen);
	cr_assert_geq(sum, (uint64_t)child_num(&f->c, "df"),
		      "df reaches %llu ndarray bytes < %lld",
		      (unsigned long long)sum, child_num(&f->c, "df"));
}

static void check_walk(const struct interp *in)
{
	struct fixture f = { 0 };

	f.c = child_start(in, code);
	walk_child(&f, 5000000000ull, 100);
	cr_assert_eq(f.r.rt.minor, in->minor);
	check_sizes(&f);
	if (in->numpy)
		check_numpy(&f);
	done(&f);
}

/* max_depth 2: chain (0) and its first list (1) expanded, the next cut. */
static void check_depth(const struct interp *in)
{
	struct fixture f = { 0 };
	const struct gnode *n, *l1, *l2;
	const struct walk *w = &f.w;

	f.c = child_start(in, code);
	walk_child(&f, 5000000000ull, 2);
	cr_assert(w->cut_depth);
	cr_assert_null(w->stopped);
	n = need_root(w, "chain");
	cr_assert_eq(n->state, GS_DONE);
	cr_assert_eq(n->depth, 0);
	cr_assert_eq(only_kid(w, n, "bytes")->size, 300033);
	l1 = only_kid(w, n, "list");
	cr_assert_eq(l1->depth, 1);
	cr_assert_eq(l1->state, GS_DONE);
	cr_assert_eq(only_kid(w, l1, "bytes")->size, 300033);
	l2 = only_kid(w, l1, "list");
	cr_assert_eq(l2->depth, 2);
	cr_assert_eq(l2->state, GS_CUT);
	cr_assert_eq(l2->nkids, 0);
	done(&f);
}

/* A 1 ns budget: the first expansion, then everything else partial. */
static void check_budget(const struct interp *in)
{
	struct fixture f = { 0 };
	const struct walk *w = &f.w;
	size_t i, partial = 0;

	f.c = child_start(in, code);
	walk_child(&f, 1, 100);
	cr_assert_not_null(w->stopped);
	cr_assert_str_eq(w->stopped, "time");
	for (i = 0; i < w->nnodes; i++) {
		cr_assert_neq(w->nodes[i].state, GS_NEW);
		partial += w->nodes[i].state == GS_PARTIAL;
	}
	cr_assert_geq(partial, 5, "%zu partial", partial);
	cr_assert_eq(need_root(w, "dd")->state, GS_PARTIAL);
	done(&f);
}

/* Objects held by one name, each alone in its node: sys.getsizeof. */
static const char sizes_code[] =
	"import sys, time, json\n"
	"class E:\n"
	"    pass\n"
	"class S:\n"
	"    __slots__ = ('a', 'b')\n"
	"names = dict(\n"
	"    s_ascii=\"'x' * n\", s_latin='chr(233) * n',\n"
	"    s_ucs2='chr(8364) * n', s_ucs4='chr(0x1F600) * n',\n"
	"    s_short=\"'ab' + str(len(sys.argv) + 7)\",\n"
	"    i_big='10 ** 100', i_neg='-(10 ** 2)', i_negbig='-(10 ** 50)',\n"
	"    i_mid='10 ** 5 + 1', i_m6='-(10 ** 0) * 6',\n"
	"    i_min='-(10 ** 0) * 300',\n"
	"    d_small=\"{'a': None, 'b': None}\",\n"
	"    d_big='dict.fromkeys(range(200))', d_empty='{}',\n"
	"    d_ints='dict.fromkeys(range(-5, 250))',\n"
	"    st='set(range(200))', fs='frozenset(range(100))',\n"
	"    st_empty='set()', tp='tuple(range(200))', lst_empty='[]',\n"
	"    lst_small='[None] * 7', ba0='bytearray()', ba5='bytearray(5)',\n"
	"    by1='bytes(len(sys.argv))', inst='E()', slots='S()',\n"
	"    flt='float(len(sys.argv)) + 0.25',\n"
	"    cplx='complex(len(sys.argv), 1)',\n"
	")\n"
	"e = {}\n"
	"n = 999 + len(sys.argv)  # not a constant: 3.12 interns those\n"
	"for k, v in names.items():\n"
	"    globals()[k] = eval(v)\n"
	"    e[k] = sys.getsizeof(globals()[k])\n"
	"del k, v\n"
	"i_m5 = -(10 ** 0) * 5  # a small int: shared, never a node\n"
	"print('ready', json.dumps(e), flush=True)\n"
	"time.sleep(30)\n";

static void check_getsizeof(const struct interp *in)
{
	struct fixture f = { 0 };
	const char *key;
	json_t *v;
	int bad = 0;

	f.c = child_start(in, sizes_code);
	walk_child(&f, 5000000000ull, 100);
	cr_assert_gt(json_object_size(f.c.expect), 20);
	json_object_foreach(f.c.expect, key, v)
	{
		const struct gnode *n = root(&f.w, key);

		if (!n) {
			cr_log_error("%s: no root %s (%lld)", in->name, key,
				     (long long)json_integer_value(v));
			bad++;
		} else if (n->size != (uint64_t)json_integer_value(v)) {
			cr_log_error("%s: %s (%s) is %llu, getsizeof %lld",
				     in->name, key, tname(&f.w, n),
				     (unsigned long long)n->size,
				     (long long)json_integer_value(v));
			bad++;
		}
	}
	cr_assert_eq(bad, 0, "%d sizes differ", bad);
	cr_assert_null(root(&f.w, "i_m5"));
	cr_assert_not_null(root(&f.w, "i_m6"));
	done(&f);
}

#define VERSION(tag, init)                            \
	Test(walk, tag, .timeout = 40)                \
	{                                             \
		static const struct interp in = init; \
		check_walk(&in);                      \
	}                                             \
	Test(walk, tag##_depth, .timeout = 40)        \
	{                                             \
		static const struct interp in = init; \
		check_depth(&in);                     \
	}                                             \
	Test(walk, tag##_budget, .timeout = 40)       \
	{                                             \
		static const struct interp in = init; \
		check_budget(&in);                    \
	}                                             \
	Test(walk, tag##_getsizeof, .timeout = 40)    \
	{                                             \
		static const struct interp in = init; \
		check_getsizeof(&in);                 \
	}

VERSION(pyenv_3_8, INTERP_38)
VERSION(pyenv_3_10, INTERP_310)
VERSION(debian_3_11, INTERP_311)
VERSION(pyenv_3_12, INTERP_312)
VERSION(pyenv_3_13, INTERP_313)
VERSION(sid_3_14, INTERP_314)
VERSION(sid_3_15, INTERP_315)
