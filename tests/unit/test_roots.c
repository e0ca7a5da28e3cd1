// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The walk's roots as big_objs() finds them (user/names/roots.c), read
 * from an IPython shell with no kernel: InteractiveShell.instance() runs
 * cells in a child (Debian's 3.11, sid's 3.14), which then sleeps.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include "names/pyread.h"
#include "names/roots.h"
#include "names/walk.h"
#include "names_child.h"
#include "unit.h"

static const char code[] =
	"import contextlib, io, json, sys, time\n"
	"from IPython.core.interactiveshell import InteractiveShell\n"
	"sh = InteractiveShell.instance()\n"
	"def run(cell):\n"
	"    with contextlib.redirect_stdout(io.StringIO()):\n"
	"        sh.run_cell(cell, store_history=True)\n"
	"run('import numpy as np')\n"
	"run('a = np.ones(1000)')\n"
	"run('np.zeros(500)')\n"
	"run('import pandas as pd\\n'\n"
	"    'df = pd.DataFrame({\"x\": range(10), \"y\": range(10),'\n"
	"    ' \"z\": range(10)})\\n'\n"
	"    's = pd.Series(range(7))\\n'\n"
	"    'lst = [1, 2, 3, 4, 5]')\n"
	"e = {'refcnt': sys.getrefcount(sh.user_ns['_']) - 1}\n"
	"print('ready', json.dumps(e), flush=True)\n"
	"time.sleep(30)\n";

struct fixture {
	struct child c;
	struct pyread r;
	struct walk w;
};

static const struct groot *find_root(const struct walk *w, const char *label)
{
	size_t i;

	for (i = 0; i < w->nroots; i++)
		if (!strcmp(w->roots[i].label, label))
			return &w->roots[i];
	return NULL;
}

static void dump(const struct walk *w)
{
	size_t i;

	for (i = 0; i < w->nroots; i++)
		cr_log_info(
			"root %s node %u row %d summary '%s' refcnt %llu "
			"indeg %llu",
			w->roots[i].label, w->roots[i].node, w->roots[i].row,
			w->roots[i].summary,
			(unsigned long long)w->nodes[w->roots[i].node].refcnt,
			(unsigned long long)w->nodes[w->roots[i].node].indeg);
}

static const struct groot *need(const struct walk *w, const char *label)
{
	const struct groot *r = find_root(w, label);

	if (!r)
		dump(w);
	cr_assert(r, "no root %s", label);
	return r;
}

static void check_ipython(const struct interp *in)
{
	struct fixture f = { 0 };
	const struct groot *out3, *u, *r;
	const struct gnode *n;
	struct walk *w = &f.w;
	uint64_t ns;
	size_t i;

	f.c = child_start(in, code);
	cr_assert_eq(pyread__open(&f.r, f.c.pid), 0);
	cr_assert_eq(pyread__main_dict(&f.r, &ns), 0);
	cr_assert_eq(walk__init(w, &f.r, 5000000000ull, 100), 0);
	cr_assert_eq(roots__read(w, ns), 0);
	walk__run(w);
	roots__summaries(w);
	cr_assert_null(w->stopped);

	/* Out[3] with its alias _3 counted, not a root of its own */
	out3 = need(w, "Out[3]");
	cr_assert(out3->row);
	cr_assert_null(find_root(w, "_3"));
	cr_assert_str_eq(out3->summary, "float64 (500,)");
	u = need(w, "_");
	cr_assert(u->row);
	cr_assert_eq(u->node, out3->node);
	n = &w->nodes[out3->node];
	if (n->indeg != n->refcnt)
		dump(w);
	cr_assert_eq(n->refcnt, (uint64_t)child_num(&f.c, "refcnt"));
	cr_assert_eq(n->indeg, n->refcnt, "indeg %llu refcnt %llu",
		     (unsigned long long)n->indeg,
		     (unsigned long long)n->refcnt);
	/* `__` and `___` are '' (str) or other outputs: none here */
	r = need(w, "a");
	cr_assert(r->row);
	cr_assert_str_eq(r->summary, "float64 (1000,)");
	cr_assert_eq(w->nodes[r->node].refcnt, w->nodes[r->node].indeg);
	r = need(w, "df");
	cr_assert_str_eq(r->summary, "(10, 3)");
	r = need(w, "s");
	cr_assert_str_eq(r->summary, "(7,)");
	r = need(w, "lst");
	cr_assert_str_eq(r->summary, "len 5");
	/* IPython's internals: walked maybe, never rows */
	for (i = 0; i < w->nroots; i++) {
		const char *l = w->roots[i].label;

		if (!strcmp(l, "In") || !strcmp(l, "Out") ||
		    !strcmp(l, "get_ipython") || !strcmp(l, "exit") ||
		    !strcmp(l, "quit") || !strcmp(l, "_ih") ||
		    !strcmp(l, "_oh") || !strcmp(l, "_i3"))
			cr_assert_not(w->roots[i].row, "%s is a row", l);
		if (!strcmp(l, "Out"))
			cr_assert_fail("Out is a root");
	}
	/* _ih: the cells' sources, index = cell number */
	cr_assert_geq(w->nhistory, 5);
	cr_assert_not_null(w->history);
	cr_assert_str_eq(w->history[0], "");
	cr_assert_str_eq(w->history[1], "import numpy as np");
	cr_assert_str_eq(w->history[2], "a = np.ones(1000)");
	cr_assert_str_eq(w->history[3], "np.zeros(500)");
	cr_assert_not_null(strstr(w->history[4], "s = pd.Series(range(7))"));
	walk__free(w);
	pyread__close(&f.r);
	child_stop(&f.c);
}

Test(roots, debian_3_11, .timeout = 40)
{
	static const struct interp in = INTERP_311;

	check_ipython(&in);
}

Test(roots, sid_3_14, .timeout = 40)
{
	static const struct interp in = INTERP_314;

	check_ipython(&in);
}
