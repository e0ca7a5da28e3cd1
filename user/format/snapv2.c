// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "snapfile.h"
#include "snapv2.h"

/* Each table, and what names its entries (key -> index). */
struct snapv2 {
	json_t *strings, *string_ix;
	json_t *frames, *frame_ix;
	json_t *stacks, *stack_ix;
};

/* A frame's fields that hold strings: written as string indexes. */
static const char *const string_fields[] = { "function", "file", "module",
					     "address" };

static bool is_string_field(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(string_fields) / sizeof(string_fields[0]); i++)
		if (!strcmp(key, string_fields[i]))
			return true;
	return false;
}

/* ---- interning (writers) ------------------------------------------------ */

struct snapv2 *snapv2__new(void)
{
	struct snapv2 *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->strings = json_array();
	t->string_ix = json_object();
	t->frames = json_array();
	t->frame_ix = json_object();
	t->stacks = json_array();
	t->stack_ix = json_object();
	if (!t->strings || !t->string_ix || !t->frames || !t->frame_ix ||
	    !t->stacks || !t->stack_ix) {
		snapv2__free(t);
		return NULL;
	}
	return t;
}

void snapv2__free(struct snapv2 *t)
{
	if (!t)
		return;
	json_decref(t->strings);
	json_decref(t->string_ix);
	json_decref(t->frames);
	json_decref(t->frame_ix);
	json_decref(t->stacks);
	json_decref(t->stack_ix);
	free(t);
}

/*
 * key's index in the table ix names, appending entry (taken) when it is
 * new. The keys are ours (C strings): no UTF-8 check is needed on them.
 */
static long intern(json_t *table, json_t *ix, const char *key, json_t *entry)
{
	json_t *known = json_object_get(ix, key);
	size_t n = json_array_size(table);

	if (known) {
		json_decref(entry);
		return (long)json_integer_value(known);
	}
	if (!entry || json_array_append_new(table, entry))
		return -1;
	if (json_object_set_new_nocheck(ix, key, json_integer((json_int_t)n)))
		return -1;
	return (long)n;
}

json_t *snapv2__string(struct snapv2 *t, const char *s)
{
	json_t *str;
	long i;

	if (!s)
		return json_null();
	str = json_string(s);
	if (!str)
		return json_null(); /* not UTF-8: as version 1 wrote it */
	i = intern(t->strings, t->string_ix, s, str);
	return i < 0 ? NULL : json_integer(i);
}

/* The version-2 form of a version-1 frame: its strings as indexes. */
static json_t *packed_frame(struct snapv2 *t, json_t *frame)
{
	json_t *out = json_object(), *v;
	const char *k;

	if (!out)
		return NULL;
	json_object_foreach(frame, k, v)
	{
		json_t *w = is_string_field(k) && json_is_string(v)
				    ? snapv2__string(t, json_string_value(v))
				    : json_incref(v);

		if (!w || json_object_set_new_nocheck(out, k, w)) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

long snapv2__find_frame(struct snapv2 *t, const char *key)
{
	json_t *known = json_object_get(t->frame_ix, key);

	return known ? (long)json_integer_value(known) : -1;
}

long snapv2__frame(struct snapv2 *t, const char *key, json_t *frame)
{
	char *text = NULL;
	long i;

	if (!frame)
		return -1;
	if (!key)
		key = text = json_dumps(frame, JSON_COMPACT | JSON_SORT_KEYS);
	i = key ? snapv2__find_frame(t, key) : -1;
	if (key && i < 0)
		i = intern(t->frames, t->frame_ix, key, packed_frame(t, frame));
	free(text);
	json_decref(frame);
	return i;
}

long snapv2__stack(struct snapv2 *t, json_t *indexes)
{
	char *key = json_dumps(indexes, JSON_COMPACT);
	long i = key ? intern(t->stacks, t->stack_ix, key, indexes) : -1;

	if (!key)
		json_decref(indexes);
	free(key);
	return i;
}

int snapv2__finish(struct snapv2 *t, json_t *doc)
{
	if (json_object_set(doc, "strings", t->strings) ||
	    json_object_set(doc, "frames", t->frames) ||
	    json_object_set(doc, "stacks", t->stacks) ||
	    json_object_set_new(doc, "version", json_integer(2)))
		return -ENOMEM;
	return 0;
}

/* ---- packing a version-1 document --------------------------------------- */

/* One v1 stack as v2 names it: {stack, bytes, count, cell, ...}. */
static json_t *packed_stack(struct snapv2 *t, json_t *st)
{
	json_t *out = json_object(), *idx = json_array(), *f, *v;
	const char *k;
	size_t i;
	long s;

	if (!out || !idx)
		goto fail;
	json_array_foreach(json_object_get(st, "frames"), i, f)
	{
		long n = snapv2__frame(t, NULL, json_incref(f));

		if (n < 0 || json_array_append_new(idx, json_integer(n)))
			goto fail;
	}
	s = snapv2__stack(t, idx);
	idx = NULL;
	if (s < 0 || json_object_set_new(out, "stack", json_integer(s)))
		goto fail;
	json_object_foreach(st, k, v)
	{
		json_t *w;

		if (!strcmp(k, "frames"))
			continue;
		w = !strcmp(k, "cell") && json_is_string(v)
			    ? snapv2__string(t, json_string_value(v))
			    : json_incref(v);
		if (!w || json_object_set_new_nocheck(out, k, w))
			goto fail;
	}
	return out;
fail:
	json_decref(idx);
	json_decref(out);
	return NULL;
}

/* A section (peak, current) with its stacks packed; other keys as is. */
static json_t *packed_section(struct snapv2 *t, json_t *sec)
{
	json_t *out = json_copy(sec), *stacks = json_array(), *st;
	size_t i;

	if (!out || !stacks)
		goto fail;
	json_array_foreach(json_object_get(sec, "stacks"), i, st)
	{
		if (json_array_append_new(stacks, packed_stack(t, st)))
			goto fail;
	}
	if (json_object_set_new(out, "stacks", stacks))
		goto fail_out;
	return out;
fail:
	json_decref(stacks);
fail_out:
	json_decref(out);
	return NULL;
}

json_t *snapv2__pack(json_t *v1)
{
	static const char *const sections[] = { "peak", "current" };
	struct snapv2 *t = snapv2__new();
	json_t *doc = json_copy(v1);
	size_t i;

	if (!t || !doc)
		goto fail;
	for (i = 0; i < 2; i++) {
		json_t *sec = json_object_get(v1, sections[i]);

		if (json_is_object(sec) &&
		    json_object_set_new(doc, sections[i],
					packed_section(t, sec)))
			goto fail;
	}
	if (snapv2__finish(t, doc))
		goto fail;
	snapv2__free(t);
	return doc;
fail:
	snapv2__free(t);
	json_decref(doc);
	return NULL;
}

/* ---- expanding (readers) ------------------------------------------------ */

struct expand {
	json_t *strings, *frames, *stacks; /* v2's tables */
	json_t *frame_objs; /* frames expanded, shared by every stack */
	json_t *stack_arrays; /* stacks expanded: arrays of frame objects */
	char *err;
	size_t errlen;
};

static json_t *bad(struct expand *x, const char *what, size_t i)
{
	snprintf(x->err, x->errlen, "snapshot is damaged (%s %zu)", what, i);
	return NULL;
}

/* A string index (or null) as the string it names. */
static json_t *string_at(struct expand *x, json_t *v, size_t where)
{
	json_int_t i;

	if (json_is_null(v))
		return json_null();
	if (!json_is_integer(v))
		return bad(x, "string index in entry", where);
	i = json_integer_value(v);
	if (i < 0 || (size_t)i >= json_array_size(x->strings) ||
	    !json_is_string(json_array_get(x->strings, (size_t)i)))
		return bad(x, "string index in entry", where);
	return json_incref(json_array_get(x->strings, (size_t)i));
}

/* Frame i of the table, its string fields written out. */
static json_t *expanded_frame(struct expand *x, json_t *f, size_t i)
{
	json_t *out, *v;
	const char *k;

	if (!json_is_object(f))
		return bad(x, "frame", i);
	out = json_object();
	json_object_foreach(f, k, v)
	{
		json_t *w = is_string_field(k) ? string_at(x, v, i)
					       : json_incref(v);

		if (!w || json_object_set_new_nocheck(out, k, w)) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* Stack i: its frame indexes as the frame objects. */
static json_t *expanded_stack(struct expand *x, json_t *s, size_t i)
{
	json_t *out, *v;
	size_t k;

	if (!json_is_array(s))
		return bad(x, "stack", i);
	out = json_array();
	json_array_foreach(s, k, v)
	{
		json_int_t n = json_integer_value(v);

		if (!json_is_integer(v) || n < 0 ||
		    (size_t)n >= json_array_size(x->frame_objs)) {
			json_decref(out);
			return bad(x, "frame index in stack", i);
		}
		json_array_append(out, json_array_get(x->frame_objs, n));
	}
	return out;
}

/* Every frame and stack of the tables, once. */
static int expand_tables(struct expand *x)
{
	json_t *v;
	size_t i;

	if (!json_is_array(x->strings) || !json_is_array(x->frames) ||
	    !json_is_array(x->stacks)) {
		snprintf(x->err, x->errlen,
			 "snapshot is damaged (strings/frames/stacks tables)");
		return -EINVAL;
	}
	json_array_foreach(x->frames, i, v)
	{
		if (json_array_append_new(x->frame_objs,
					  expanded_frame(x, v, i)))
			return -EINVAL;
	}
	json_array_foreach(x->stacks, i, v)
	{
		if (json_array_append_new(x->stack_arrays,
					  expanded_stack(x, v, i)))
			return -EINVAL;
	}
	return 0;
}

/* One section stack, {stack: i, cell: s} -> {frames: [...], cell: "..."}. */
static json_t *expanded_entry(struct expand *x, json_t *st, size_t where)
{
	json_t *out, *v, *idx = json_object_get(st, "stack");
	json_int_t n = json_integer_value(idx);
	const char *k;

	if (!json_is_object(st) || !json_is_integer(idx) || n < 0 ||
	    (size_t)n >= json_array_size(x->stack_arrays))
		return bad(x, "stack entry", where);
	out = json_object();
	if (json_object_set_nocheck(out, "frames",
				    json_array_get(x->stack_arrays, n)))
		goto fail;
	json_object_foreach(st, k, v)
	{
		json_t *w;

		if (!strcmp(k, "stack"))
			continue;
		w = !strcmp(k, "cell") ? string_at(x, v, where)
				       : json_incref(v);
		if (!w || json_object_set_new_nocheck(out, k, w))
			goto fail;
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

/* A section as version 1 has it (a missing one stays missing). */
static int expand_section(struct expand *x, json_t *doc, const char *name)
{
	json_t *sec = json_object_get(doc, name), *out, *stacks, *st;
	size_t i;

	if (!sec)
		return 0;
	stacks = json_object_get(sec, "stacks");
	if (!json_is_object(sec) || !json_is_array(stacks)) {
		snprintf(x->err, x->errlen, "snapshot is damaged (%s section)",
			 name);
		return -EINVAL;
	}
	out = json_array();
	json_array_foreach(stacks, i, st)
	{
		if (json_array_append_new(out, expanded_entry(x, st, i))) {
			json_decref(out);
			return -EINVAL;
		}
	}
	sec = json_copy(sec);
	if (!sec || json_object_set_new(sec, "stacks", out) ||
	    json_object_set_new(doc, name, sec))
		return -ENOMEM;
	return 0;
}

json_t *snapv2__expand(json_t *v2, char *err, size_t errlen)
{
	struct expand x = { .strings = json_object_get(v2, "strings"),
			    .frames = json_object_get(v2, "frames"),
			    .stacks = json_object_get(v2, "stacks"),
			    .frame_objs = json_array(),
			    .stack_arrays = json_array(),
			    .err = err,
			    .errlen = errlen };
	json_t *doc = json_copy(v2);
	int rc = doc && x.frame_objs && x.stack_arrays ? 0 : -ENOMEM;

	snprintf(err, errlen, "out of memory");
	if (!rc)
		rc = expand_tables(&x);
	if (!rc)
		rc = expand_section(&x, doc, "peak");
	if (!rc)
		rc = expand_section(&x, doc, "current");
	json_decref(x.frame_objs);
	json_decref(x.stack_arrays);
	if (rc) {
		json_decref(doc);
		return NULL;
	}
	json_object_del(doc, "strings");
	json_object_del(doc, "frames");
	json_object_del(doc, "stacks");
	json_object_set_new(doc, "version", json_integer(1));
	return doc;
}
