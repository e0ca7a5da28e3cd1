// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lib/text.h"
#include "profile.pb-c.h"
#include "pprof.h"
#include "snapdoc.h"
#include "snapfile.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__ValueType ValueType;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Label Label;
typedef Perftools__Profiles__Mapping Mapping;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;

/* Interning keys: a kind letter, then fields apart by a byte no name has. */
#define SEP "\x1f"

/* peak count, peak bytes, current count, current bytes (sample_type order) */
#define NVALUES 4

/* A growable array of pointers, owned: what the Profile's arrays point to. */
struct vec {
	void **v;
	size_t n, cap;
};

/*
 * The profile being built. Every string, function, location, mapping and
 * sample is made once and found again by key in ids (id 0 means new:
 * pprof's ids start at 1, and string 0 is "").
 */
struct pprof {
	json_t *ids;
	struct vec strings, functions, locations, mappings, samples;
	int err;
};

/* A location with its one line, in one allocation. */
struct located {
	Location loc;
	Line line;
	Line *lines[1];
};

/* A sample with its values and its optional cell label. */
struct sampled {
	Sample s;
	int64_t value[NVALUES];
	Label label;
	Label *labels[1];
};

/* ---- interning ---------------------------------------------------------- */

/* Append p (taken over: freed on failure); false when out of memory. */
static bool push(struct pprof *b, struct vec *v, void *p)
{
	if (p && v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 64;
		void **grown = realloc(v->v, cap * sizeof(*grown));

		if (!grown) {
			free(p);
			p = NULL;
		} else {
			v->v = grown;
			v->cap = cap;
		}
	}
	if (!p) {
		b->err = -ENOMEM;
		return false;
	}
	v->v[v->n++] = p;
	return true;
}

/* A zeroed message of size bytes, appended to v; NULL when out of memory. */
static void *new_msg(struct pprof *b, struct vec *v, size_t size)
{
	void *m = calloc(1, size);

	return push(b, v, m) ? m : NULL;
}

static uint64_t known(struct pprof *b, const char *key)
{
	return key ? json_integer_value(json_object_get(b->ids, key)) : 0;
}

static void remember(struct pprof *b, const char *key, uint64_t id)
{
	if (json_object_set_new_nocheck(b->ids, key, json_integer(id)))
		b->err = -ENOMEM;
}

/* A formatted key (NULL, noted, when out of memory). */
static char *key_of(struct pprof *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static char *key_of(struct pprof *b, const char *fmt, ...)
{
	va_list ap;
	char *key;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&key, fmt, ap);
	va_end(ap);
	if (n >= 0)
		return key;
	b->err = -ENOMEM;
	return NULL;
}

/* Index of s in the string table; NULL and "" are entry 0. */
static int64_t str_id(struct pprof *b, const char *s)
{
	char *key;
	int64_t id;

	if (!s || !*s)
		return 0;
	key = key_of(b, "s" SEP "%s", s);
	id = known(b, key);
	if (key && !id && push(b, &b->strings, strdup(s))) {
		id = b->strings.n - 1;
		remember(b, key, id);
	}
	free(key);
	return id;
}

/*
 * pprof's Function: a name in a file (Python) or a module (native). Only
 * native names get a system_name: pprof demangles those that equal their
 * name, and would cut Python's "<module>" as if a C++ template.
 */
static uint64_t function_id(struct pprof *b, const char *name, const char *file,
			    bool native)
{
	char *key =
		key_of(b, "f%d" SEP "%s" SEP "%s", native, name, file ?: "");
	uint64_t id = known(b, key);
	Function *f;

	if (key && !id && (f = new_msg(b, &b->functions, sizeof(*f)))) {
		*f = (Function)PERFTOOLS__PROFILES__FUNCTION__INIT;
		f->id = id = b->functions.n;
		f->name = str_id(b, name);
		f->system_name = native ? f->name : 0;
		f->filename = str_id(b, file);
		remember(b, key, id);
	}
	free(key);
	return id;
}

/*
 * One Mapping per native module, so pprof shows the file and groups by
 * it. Load addresses are not in the snapshot; has_functions tells pprof
 * the names are there and nothing needs symbolizing.
 */
static uint64_t mapping_id(struct pprof *b, const char *module)
{
	char *key = module ? key_of(b, "m" SEP "%s", module) : NULL;
	uint64_t id = known(b, key);
	Mapping *m;

	if (key && !id && (m = new_msg(b, &b->mappings, sizeof(*m)))) {
		*m = (Mapping)PERFTOOLS__PROFILES__MAPPING__INIT;
		m->id = id = b->mappings.n;
		m->filename = str_id(b, module);
		m->has_functions = true;
		remember(b, key, id);
	}
	free(key);
	return id;
}

/*
 * pprof names a profile after its first mapping ("File:"): make that the
 * program's own, the first module whose file name starts with comm.
 */
static void program_mapping_first(struct pprof *b, json_t *doc)
{
	json_t *peak = json_object_get(doc, "peak"), *s, *f;
	const char *comm = snapdoc__str(doc, "comm");
	size_t i, j;

	if (!comm || !*comm)
		return;
	json_array_foreach(json_object_get(peak, "stacks"), i, s)
	{
		json_array_foreach(json_object_get(s, "frames"), j, f)
		{
			const char *module = snapdoc__str(f, "module");
			const char *base = module ? strrchr(module, '/') : NULL;

			base = base ? base + 1 : module;
			if (base && !strncmp(base, comm, strlen(comm))) {
				mapping_id(b, module);
				return;
			}
		}
	}
}

/* The key of a frame: what tells two frames apart in the snapshot. */
static char *frame_key(struct pprof *b, json_t *f, bool native)
{
	const char *fn = snapdoc__str(f, "function") ?: "";

	if (native)
		return key_of(b, "n" SEP "%s" SEP "%s" SEP "%s",
			      snapdoc__str(f, "address") ?: "",
			      snapdoc__str(f, "module") ?: "", fn);
	return key_of(b, "p" SEP "%s" SEP "%lld" SEP "%s",
		      snapdoc__str(f, "file") ?: "",
		      (long long)snapdoc__int(f, "line"), fn);
}

/* Fill a new location from its frame: address and module if native. */
static void fill_location(struct pprof *b, struct located *l, json_t *f,
			  bool native)
{
	const char *addr = snapdoc__str(f, "address");
	const char *module = snapdoc__str(f, "module");
	const char *name = snapdoc__str(f, "function");
	char unknown[256];

	l->loc = (Location)PERFTOOLS__PROFILES__LOCATION__INIT;
	l->line = (Line)PERFTOOLS__PROFILES__LINE__INIT;
	l->lines[0] = &l->line;
	l->loc.line = l->lines;
	l->loc.n_line = 1;
	l->loc.id = b->locations.n;
	if (native) {
		l->loc.address = addr ? strtoull(addr, NULL, 16) : 0;
		l->loc.mapping_id = mapping_id(b, module);
		/*
		 * No symbol: "libfoo.so+0x1a2b" (its offset in the module),
		 * the same in every run, unlike the address. Not the page's
		 * "[unknown] (libfoo.so)": pprof strips a "(...)" as C++
		 * arguments, and every module's would become one "[unknown]".
		 */
		if (!name) {
			snprintf(unknown, sizeof(unknown), "%s+0x%llx",
				 module ? text__base_name(module) : "?",
				 (unsigned long long)snapdoc__int(f, "offset"));
			name = unknown;
		}
	} else {
		l->line.line = snapdoc__int(f, "line");
	}
	l->line.function_id =
		function_id(b, name ?: "[unknown]",
			    native ? module : snapdoc__str(f, "file"), native);
}

/* One Location per distinct frame, shared by every stack through it. */
static uint64_t location_id(struct pprof *b, json_t *f)
{
	bool native = !json_is_false(json_object_get(f, "native"));
	char *key = frame_key(b, f, native);
	uint64_t id = known(b, key);
	struct located *l;

	if (key && !id && (l = new_msg(b, &b->locations, sizeof(*l)))) {
		fill_location(b, l, f, native);
		id = l->loc.id;
		remember(b, key, id);
	}
	free(key);
	return id;
}

/* ---- samples ------------------------------------------------------------ */

/* Sums stay defined whatever a file holds (int64 limits, as report's). */
static int64_t add_clamped(int64_t a, int64_t b)
{
	int64_t sum;

	if (!__builtin_add_overflow(a, b, &sum))
		return sum;
	return b > 0 ? INT64_MAX : INT64_MIN;
}

/* A stack's identity across sections: its cell and its locations. */
static char *stack_key(struct pprof *b, const uint64_t *ids, size_t n,
		       int64_t cell)
{
	char *key = NULL;
	size_t len = 0, i;
	FILE *m = open_memstream(&key, &len);

	if (!m) {
		b->err = -ENOMEM;
		return NULL;
	}
	fprintf(m, "x" SEP "%lld", (long long)cell);
	for (i = 0; i < n; i++)
		fprintf(m, ",%llu", (unsigned long long)ids[i]);
	if (fclose(m)) {
		b->err = -ENOMEM;
		free(key);
		return NULL;
	}
	return key;
}

/* A new sample: its leaf-first locations (taken over) and cell label. */
static struct sampled *new_sample(struct pprof *b, uint64_t *ids, size_t n,
				  int64_t cell)
{
	struct sampled *x = new_msg(b, &b->samples, sizeof(*x));

	if (!x) {
		free(ids);
		return NULL;
	}
	x->s = (Sample)PERFTOOLS__PROFILES__SAMPLE__INIT;
	x->s.location_id = ids;
	x->s.n_location_id = n;
	x->s.value = x->value;
	x->s.n_value = NVALUES;
	if (cell) {
		x->label = (Label)PERFTOOLS__PROFILES__LABEL__INIT;
		x->label.key = str_id(b, "cell");
		x->label.str = cell;
		x->labels[0] = &x->label;
		x->s.label = x->labels;
		x->s.n_label = 1;
	}
	return x;
}

/*
 * Add one snapshot stack to the sample of the same frames and cell;
 * section 0 (peak) or 1 (current) says which pair of values it fills.
 */
static void add_stack(struct pprof *b, json_t *stack, int section)
{
	json_t *frames = json_object_get(stack, "frames");
	size_t n = json_array_size(frames), i;
	uint64_t *ids = calloc(n ? n : 1, sizeof(*ids));
	int64_t cell = str_id(b, snapdoc__str(stack, "cell"));
	struct sampled *x = NULL;
	char *key;
	uint64_t id;

	if (!ids) {
		b->err = -ENOMEM;
		return;
	}
	for (i = 0; i < n; i++) /* pprof's order: leaf first */
		ids[i] = location_id(b, json_array_get(frames, n - 1 - i));
	key = stack_key(b, ids, n, cell);
	id = known(b, key);
	if (id) {
		x = b->samples.v[id - 1];
		free(ids);
	} else if (key && (x = new_sample(b, ids, n, cell))) {
		remember(b, key, b->samples.n);
	} else {
		free(ids);
	}
	free(key);
	if (!x)
		return;
	x->value[2 * section] =
		add_clamped(x->value[2 * section], snapdoc__int(stack, "coun"
								       "t"));
	x->value[2 * section + 1] = add_clamped(x->value[2 * section + 1],
						snapdoc__int(stack, "bytes"));
}

/* ---- the profile -------------------------------------------------------- */

static const char *const value_types[NVALUES][2] = {
	{ "inuse_objects", "count" },
	{ "inuse_space", "bytes" },
	{ "current_objects", "count" },
	{ "current_space", "bytes" },
};

/* taken_at ("2026-12-05T10:11:12.345Z") in ns since the epoch, else 0. */
static int64_t nanos_of(const char *iso)
{
	struct tm tm = { 0 };
	const char *rest = iso ? strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	int ms = 0;
	time_t t;

	if (!rest)
		return 0;
	t = timegm(&tm);
	if (t < 0 || t > INT64_MAX / 1000000000 - 1)
		return 0;
	if (sscanf(rest, ".%3d", &ms) != 1 || ms < 0)
		ms = 0;
	return (int64_t)t * 1000000000 + (int64_t)ms * 1000000;
}

/* Who and why, for pprof -comments and the web UI's legend. */
static void add_comments(struct pprof *b, json_t *doc, int64_t *comments)
{
	char *line = key_of(b, "memprof-bpf snapshot of %s (pid %lld), %s",
			    snapdoc__str(doc, "comm") ?: "?",
			    (long long)snapdoc__int(doc, "pid"),
			    snapdoc__str(doc, "reason") ?: "?");

	comments[0] = str_id(b, line);
	free(line);
	line = snapdoc__str(doc, "cmdline")
		       ? key_of(b, "command: %s", snapdoc__str(doc, "cmdline"))
		       : NULL;
	comments[1] = str_id(b, line);
	free(line);
}

/* Every stack of both sections, then the Profile around what they made. */
static void build(struct pprof *b, json_t *doc, Profile *p, ValueType *vt,
		  ValueType **vtp, int64_t *comments)
{
	const char *const sections[] = { "peak", "current" };
	json_t *s;
	size_t i;
	int k;

	push(b, &b->strings, strdup(""));
	program_mapping_first(b, doc);
	for (k = 0; k < 2; k++)
		json_array_foreach(
			json_object_get(json_object_get(doc, sections[k]), "sta"
									   "ck"
									   "s"),
			i, s) add_stack(b, s, k);
	for (k = 0; k < NVALUES; k++) {
		vt[k] = (ValueType)PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
		vt[k].type = str_id(b, value_types[k][0]);
		vt[k].unit = str_id(b, value_types[k][1]);
		vtp[k] = &vt[k];
	}
	vt[NVALUES] = (ValueType)PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	vt[NVALUES].type = str_id(b, "space");
	vt[NVALUES].unit = str_id(b, "bytes");
	add_comments(b, doc, comments);
	p->sample_type = vtp;
	p->n_sample_type = NVALUES;
	p->period_type = &vt[NVALUES];
	p->period = 1;
	p->default_sample_type = vt[1].type;
	p->time_nanos = nanos_of(snapdoc__str(doc, "taken_at"));
	p->comment = comments;
	p->n_comment = comments[1] ? 2 : 1;
	p->sample = (Sample **)b->samples.v;
	p->n_sample = b->samples.n;
	p->mapping = (Mapping **)b->mappings.v;
	p->n_mapping = b->mappings.n;
	p->location = (Location **)b->locations.v;
	p->n_location = b->locations.n;
	p->function = (Function **)b->functions.v;
	p->n_function = b->functions.n;
	p->string_table = (char **)b->strings.v;
	p->n_string_table = b->strings.n;
}

static void free_vec(struct vec *v)
{
	while (v->n)
		free(v->v[--v->n]);
	free(v->v);
}

static void free_builder(struct pprof *b)
{
	size_t i;

	for (i = 0; i < b->samples.n; i++)
		free(((struct sampled *)b->samples.v[i])->s.location_id);
	free_vec(&b->samples);
	free_vec(&b->locations);
	free_vec(&b->functions);
	free_vec(&b->mappings);
	free_vec(&b->strings);
	json_decref(b->ids);
}

int pprof__write(FILE *out, json_t *doc)
{
	struct pprof b = { .ids = json_object() };
	Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
	ValueType vt[NVALUES + 1], *vtp[NVALUES];
	int64_t comments[2];
	uint8_t *buf = NULL;
	char *gz = NULL;
	size_t len;
	int err;

	if (!b.ids)
		return -ENOMEM;
	build(&b, doc, &p, vt, vtp, comments);
	err = b.err;
	if (!err) {
		len = perftools__profiles__profile__get_packed_size(&p);
		buf = malloc(len ? len : 1);
		err = buf ? 0 : -ENOMEM;
	}
	/* Gzipped: pprof reads profile.pb.gz, and gunzips what looks like it. */
	if (!err) {
		perftools__profiles__profile__pack(&p, buf);
		err = snapfile__gzip(buf, len, &gz, &len);
	}
	if (!err && fwrite(gz, 1, len, out) != len)
		err = -EIO;
	free(gz);
	free(buf);
	free_builder(&b);
	return err;
}
