// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A walk's graph as JSON (user/names/graph.c): a walk built by hand
 * (the writer only reads its nodes, edges, types, roots, blocks and
 * history), written, parsed back with jansson, every field checked
 * against the schema in python/memprof_bpf/names.py's docstring.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include "names/graph.h"
#include "names/walk.h"
#include "unit.h"

static struct gtype types[] = {
	{ .name = "bytes", .kind = GK_ATOMIC },
	{ .name = "list", .kind = GK_LIST },
	{ .name = "ndarray", .kind = GK_ARRAY },
	{ .name = "caf\xc3\xa9\"type", .kind = GK_OBJECT },
};

static struct gblock blocks[] = {
	{ .start = 0x1000,
	  .size = 4096,
	  .cell = "In [7]",
	  .where = "<cell 7>:3 \"make\"" },
	{ .start = 0x9000, .size = 64, .cell = "", .where = "" },
};

static uint32_t edges[] = { 1, 2, 2, 1 };

/* Nodes: 0 a list -> 1, 2; 1 bytes; 2 ndarray view -> its base 1. */
static void build(struct walk *w, struct gnode *nodes, struct groot *roots,
		  char **history)
{
	memset(w, 0, sizeof(*w));
	memset(nodes, 0, 5 * sizeof(*nodes));
	nodes[0] = (struct gnode){ .size = 184,
				   .refcnt = 1,
				   .indeg = 1,
				   .type = 1,
				   .kid0 = 0,
				   .nkids = 2,
				   .state = GS_DONE,
				   .block = -1 };
	nodes[1] = (struct gnode){ .size = 3000033,
				   .refcnt = 3,
				   .indeg = 2,
				   .type = 0,
				   .state = GS_LEAF,
				   .block = 0 };
	nodes[2] = (struct gnode){ .size = 112,
				   .refcnt = 2,
				   .indeg = 2,
				   .type = 2,
				   .kid0 = 3,
				   .nkids = 1,
				   .state = GS_PARTIAL,
				   .view = true,
				   .block = 1 };
	nodes[3] = (struct gnode){ .size = 56,
				   .refcnt = 1,
				   .indeg = 1,
				   .type = 3,
				   .state = GS_CUT,
				   .block = -1 };
	nodes[4] = (struct gnode){ .size = 72,
				   .refcnt = 1,
				   .indeg = 1,
				   .type = 1,
				   .state = GS_NEW,
				   .block = -1 };
	w->nodes = nodes;
	w->nnodes = 5;
	w->edges = edges;
	w->nedges = 4;
	w->types = types;
	w->ntypes = 4;
	w->blocks = blocks;
	w->nblocks = 2;
	memset(roots, 0, 3 * sizeof(*roots));
	snprintf(roots[0].label, sizeof(roots[0].label), "lst");
	roots[0].node = 0;
	roots[0].row = true;
	snprintf(roots[0].summary, sizeof(roots[0].summary), "len 2");
	snprintf(roots[1].label, sizeof(roots[1].label),
		 "user_ns_hidden['_5']");
	roots[1].node = 2;
	roots[1].row = true;
	snprintf(roots[2].label, sizeof(roots[2].label), "In");
	roots[2].node = 3;
	roots[2].row = false;
	w->roots = roots;
	w->nroots = 3;
	w->history = history;
	w->nhistory = 4;
	w->max_depth = 100;
	w->unreadable = 7;
}

/* Write w and parse it back. */
static json_t *roundtrip(const struct walk *w, const struct graph_meta *m)
{
	char *doc = NULL;
	size_t len = 0;
	json_error_t err;
	json_t *j;
	FILE *f = open_memstream(&doc, &len);

	cr_assert_not_null(f);
	cr_assert_eq(graph__write(f, w, 4242, m), 0);
	fclose(f);
	j = json_loadb(doc, len, 0, &err);
	cr_assert_not_null(j, "%s: %s", err.text, doc);
	free(doc);
	return j;
}

static const char *str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_string(v), "%s is not a string", key);
	return json_string_value(v);
}

static json_int_t num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

static void check_node(json_t *n, const char *type, json_int_t size,
		       const char *state, bool view, bool other,
		       const char *cell, const char *where)
{
	cr_assert_eq(json_object_size(n), 8);
	cr_assert_str_eq(str(n, "type"), type);
	cr_assert_eq(num(n, "size"), size);
	cr_assert_str_eq(str(n, "state"), state);
	cr_assert(json_is_boolean(json_object_get(n, "view")));
	cr_assert_eq(json_is_true(json_object_get(n, "view")), view);
	cr_assert(json_is_boolean(json_object_get(n, "other")));
	cr_assert_eq(json_is_true(json_object_get(n, "other")), other);
	cr_assert(json_is_array(json_object_get(n, "kids")));
	if (cell)
		cr_assert_str_eq(str(n, "cell"), cell);
	else
		cr_assert(json_is_null(json_object_get(n, "cell")));
	if (where)
		cr_assert_str_eq(str(n, "where"), where);
	else
		cr_assert(json_is_null(json_object_get(n, "where")));
}

static void check_root(json_t *r, const char *label, json_int_t node, bool row,
		       const char *summary)
{
	cr_assert_eq(json_object_size(r), 4);
	cr_assert_str_eq(str(r, "label"), label);
	cr_assert_eq(num(r, "node"), node);
	cr_assert_eq(json_is_true(json_object_get(r, "row")), row);
	cr_assert(json_is_boolean(json_object_get(r, "row")));
	cr_assert_str_eq(str(r, "summary"), summary);
}

Test(graph, every_field)
{
	char *history[] = { "", "x = 'caf\xc3\xa9 \xe2\x82\xac'",
			    "print(\"a\\tb\")\ny = '''\n'''\n", NULL };
	struct graph_meta m = { .python = "3.11.2",
				.elapsed = 0.25,
				.live_bytes = -1,
				.estimated = true };
	struct gnode nodes[5];
	struct groot roots[3];
	json_t *j, *h, *ns, *rs, *k;
	struct walk w;

	build(&w, nodes, roots, history);
	j = roundtrip(&w, &m);
	cr_assert_eq(json_object_size(j), 12);
	cr_assert_eq(num(j, "pid"), 4242);
	cr_assert_str_eq(str(j, "python"), "3.11.2");
	cr_assert(json_is_null(json_object_get(j, "total_live_bytes")));
	cr_assert(json_is_true(json_object_get(j, "estimated")));
	cr_assert(json_is_real(json_object_get(j, "elapsed")));
	cr_assert_float_eq(json_real_value(json_object_get(j, "elapsed")), 0.25,
			   1e-9);
	cr_assert_eq(num(j, "max_depth"), 100);
	cr_assert(json_is_false(json_object_get(j, "cut_depth")));
	cr_assert_eq(num(j, "unreadable"), 7);
	cr_assert(json_is_null(json_object_get(j, "stopped")));
	h = json_object_get(j, "history");
	cr_assert(json_is_array(h));
	cr_assert_eq(json_array_size(h), 4);
	cr_assert_str_eq(json_string_value(json_array_get(h, 0)), "");
	cr_assert_str_eq(json_string_value(json_array_get(h, 1)), history[1]);
	cr_assert_str_eq(json_string_value(json_array_get(h, 2)), history[2]);
	cr_assert(json_is_null(json_array_get(h, 3)));

	ns = json_object_get(j, "nodes");
	cr_assert(json_is_array(ns));
	cr_assert_eq(json_array_size(ns), 5);
	check_node(json_array_get(ns, 0), "list", 184, "done", false, false,
		   NULL, NULL);
	k = json_object_get(json_array_get(ns, 0), "kids");
	cr_assert_eq(json_array_size(k), 2);
	cr_assert_eq(json_integer_value(json_array_get(k, 0)), 1);
	cr_assert_eq(json_integer_value(json_array_get(k, 1)), 2);
	check_node(json_array_get(ns, 1), "bytes", 3000033, "leaf", false, true,
		   "In [7]", "<cell 7>:3 \"make\"");
	cr_assert_eq(
		json_array_size(json_object_get(json_array_get(ns, 1), "kids")),
		0);
	check_node(json_array_get(ns, 2), "ndarray", 112, "partial", true,
		   false, NULL, NULL);
	k = json_object_get(json_array_get(ns, 2), "kids");
	cr_assert_eq(json_array_size(k), 1);
	cr_assert_eq(json_integer_value(json_array_get(k, 0)), 1);
	check_node(json_array_get(ns, 3), "caf\xc3\xa9\"type", 56, "cut", false,
		   false, NULL, NULL);
	/* a node never expanded is partial: its kids are unknown */
	check_node(json_array_get(ns, 4), "list", 72, "partial", false, false,
		   NULL, NULL);

	rs = json_object_get(j, "roots");
	cr_assert(json_is_array(rs));
	cr_assert_eq(json_array_size(rs), 3);
	check_root(json_array_get(rs, 0), "lst", 0, true, "len 2");
	check_root(json_array_get(rs, 1), "user_ns_hidden['_5']", 2, true, "");
	check_root(json_array_get(rs, 2), "In", 3, false, "");
	json_decref(j);
}

Test(graph, cut_stopped_live_no_history)
{
	struct graph_meta m = { .python = "3.14.0",
				.live_bytes = 123456789012,
				.estimated = false };
	struct gnode nodes[5];
	struct groot roots[3];
	struct walk w;
	json_t *j;

	build(&w, nodes, roots, NULL);
	w.history = NULL;
	w.nhistory = 0;
	w.stopped = "time";
	w.cut_depth = true;
	w.max_depth = 2;
	j = roundtrip(&w, &m);
	cr_assert_eq(num(j, "total_live_bytes"), 123456789012);
	cr_assert(json_is_false(json_object_get(j, "estimated")));
	cr_assert_str_eq(str(j, "stopped"), "time");
	cr_assert(json_is_true(json_object_get(j, "cut_depth")));
	cr_assert_eq(num(j, "max_depth"), 2);
	cr_assert(json_is_null(json_object_get(j, "history")));
	json_decref(j);
	w.stopped = "exited";
	j = roundtrip(&w, &m);
	cr_assert_str_eq(str(j, "stopped"), "exited");
	json_decref(j);
}

Test(graph, empty_and_not_utf8)
{
	char *history[] = { "ok", "bad \xff byte" };
	struct graph_meta m = { .python = "3.8", .live_bytes = 0 };
	struct walk w;
	json_t *j, *h;

	memset(&w, 0, sizeof(w));
	w.history = history;
	w.nhistory = 2;
	j = roundtrip(&w, &m);
	cr_assert_eq(num(j, "total_live_bytes"), 0);
	cr_assert_eq(json_array_size(json_object_get(j, "nodes")), 0);
	cr_assert_eq(json_array_size(json_object_get(j, "roots")), 0);
	h = json_object_get(j, "history");
	cr_assert_str_eq(json_string_value(json_array_get(h, 0)), "ok");
	/* text that is not UTF-8 still makes valid JSON */
	cr_assert_str_eq(json_string_value(json_array_get(h, 1)), "?");
	json_decref(j);
}
