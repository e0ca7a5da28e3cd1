// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include "graph.h"

static const char *const state_names[] = {
	[GS_NEW] = "partial",	  [GS_LEAF] = "leaf", [GS_DONE] = "done",
	[GS_PARTIAL] = "partial", [GS_CUT] = "cut",
};

/* A JSON string, or null for NULL. */
static void put_str(FILE *f, const char *s)
{
	json_t *j = s ? json_string(s) : NULL;

	if (!j) { /* NULL, or not UTF-8 */
		fputs(s ? "\"?\"" : "null", f);
		return;
	}
	json_dumpf(j, f, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
	json_decref(j);
}

/* "other": its count says someone the walk did not see holds it. */
static bool held_outside(const struct gnode *n)
{
	return n->refcnt > n->indeg;
}

static void put_node(FILE *f, const struct walk *w, const struct gnode *n)
{
	const struct gblock *b = n->block >= 0 ? &w->blocks[n->block] : NULL;
	uint32_t k;

	fputs("{\"type\":", f);
	put_str(f, walk__type(w, n)->name);
	fprintf(f, ",\"size\":%llu,\"state\":\"%s\",\"view\":%s,\"other\":%s",
		(unsigned long long)n->size, state_names[n->state],
		n->view ? "true" : "false", held_outside(n) ? "true" : "false");
	fputs(",\"kids\":[", f);
	for (k = 0; k < n->nkids; k++)
		fprintf(f, k ? ",%u" : "%u", w->edges[n->kid0 + k]);
	fputs("],\"cell\":", f);
	put_str(f, b && b->cell[0] ? b->cell : NULL);
	fputs(",\"where\":", f);
	put_str(f, b && b->where[0] ? b->where : NULL);
	fputc('}', f);
}

static void put_roots(FILE *f, const struct walk *w)
{
	size_t i;

	fputs("\"roots\":[", f);
	for (i = 0; i < w->nroots; i++) {
		const struct groot *r = &w->roots[i];

		fputs(i ? ",{\"label\":" : "{\"label\":", f);
		put_str(f, r->label);
		fprintf(f, ",\"node\":%u,\"row\":%s,\"summary\":", r->node,
			r->row ? "true" : "false");
		put_str(f, r->summary);
		fputc('}', f);
	}
	fputc(']', f);
}

static void put_history(FILE *f, const struct walk *w)
{
	size_t i;

	fputs("\"history\":", f);
	if (!w->history) {
		fputs("null", f);
		return;
	}
	fputc('[', f);
	for (i = 0; i < w->nhistory; i++) {
		if (i)
			fputc(',', f);
		put_str(f, w->history[i]);
	}
	fputc(']', f);
}

int graph__write(FILE *f, const struct walk *w, pid_t pid,
		 const struct graph_meta *m)
{
	size_t i;

	fprintf(f, "{\"pid\":%d,\"python\":", (int)pid);
	put_str(f, m->python);
	if (m->live_bytes >= 0)
		fprintf(f, ",\"total_live_bytes\":%lld",
			(long long)m->live_bytes);
	else
		fputs(",\"total_live_bytes\":null", f);
	fprintf(f,
		",\"estimated\":%s,\"elapsed\":%.3f,\"max_depth\":%u,"
		"\"cut_depth\":%s,\"unreadable\":%llu,\"stopped\":",
		m->estimated ? "true" : "false", m->elapsed, w->max_depth,
		w->cut_depth ? "true" : "false",
		(unsigned long long)w->unreadable);
	put_str(f, w->stopped);
	fputc(',', f);
	put_history(f, w);
	fputs(",\"nodes\":[", f);
	for (i = 0; i < w->nnodes; i++) {
		if (i)
			fputc(',', f);
		put_node(f, w, &w->nodes[i]);
	}
	fputs("],", f);
	put_roots(f, w);
	fputc('}', f);
	return ferror(f) ? -EIO : 0;
}
