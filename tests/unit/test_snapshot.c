// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include "format/snapv2.h"
#include "output/snapshot.h"
#include "unit.h"

#define T0 1700000000000000000LL /* 2023-11-14T22:13:20Z */
#define SEC 1000000000ULL
#define MS 1000000ULL

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/memprof-unit-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(dir);
}

static int files_in_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	fclose(f);
}

/*
 * Three sites: A (named), B (no symbol), C (not resolved: no frame).
 * Peak 4500 bytes at T0 + 3 s (A 1000, B 3000, C 500), then B is freed.
 */
static struct heap h;
static struct sites sites;
static struct snap_meta meta;

/* What sites__resolve leaves: a name, or none (the address known). */
static void resolved(uint32_t site, uint64_t offset, const char *function,
		     const char *module)
{
	struct frame *f = &sites.v[site].native;

	f->offset = offset;
	f->function = function ? strdup(function) : NULL;
	f->module = module ? strdup(module) : NULL;
	sites.nresolved = site + 1;
}

static void build_heap(void)
{
	int64_t a, b, c;

	cr_assert_eq(heap__init(&h), 0);
	cr_assert_eq(sites__reset(&sites), 0);
	a = unit_site(&sites, &h, 0x401010, 0);
	b = unit_site(&sites, &h, 0x402020, 0);
	c = unit_site(&sites, &h, 0x403030, 0);
	cr_assert_eq(heap__alloc(&h, 0x1000, 1000, a, 1 * SEC), 0);
	cr_assert_eq(heap__alloc(&h, 0x2000, 3000, b, 2 * SEC), 0);
	cr_assert_eq(heap__alloc(&h, 0x3000, 500, c, 3 * SEC), 0);
	heap__release(&h, 0x2000);
	heap__release(&h, 0x9999);

	resolved(a, 0x10, "alloc_big", "/usr/bin/app");
	resolved(b, 0x2020, NULL, NULL);

	memset(&meta, 0, sizeof(meta));
	meta.sites = &sites;
	meta.pid = 4242;
	meta.comm = "app";
	meta.cmdline = "app --x";
	meta.reason = "exit";
	meta.rss_bytes = 12345;
	meta.dropped_events = 7;
	meta.unknown_frees = h.unknown_frees;
	meta.exit_code = 2 << 8; /* exit(2) */
	meta.mono_to_real_ns = T0;
	meta.taken_ns = 5 * SEC + 123456789;
}

static json_int_t int_at(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

static const char *str_at(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_string(v), "%s is not a string", key);
	return json_string_value(v);
}

static void expect_stack(json_t *stacks, size_t i, json_int_t bytes,
			 json_int_t count, const char *function,
			 const char *module, json_int_t offset,
			 const char *address)
{
	json_t *s = json_array_get(stacks, i), *frs, *f;

	cr_assert_not_null(s, "stack %zu missing", i);
	cr_assert_eq(int_at(s, "bytes"), bytes, "stack %zu bytes", i);
	cr_assert_eq(int_at(s, "count"), count, "stack %zu count", i);
	frs = json_object_get(s, "frames");
	cr_assert_eq(json_array_size(frs), 1);
	f = json_array_get(frs, 0);
	if (function)
		cr_assert_str_eq(str_at(f, "function"), function);
	else
		cr_assert(json_is_null(json_object_get(f, "function")));
	if (module)
		cr_assert_str_eq(str_at(f, "module"), module);
	else
		cr_assert(json_is_null(json_object_get(f, "module")));
	cr_assert(json_is_null(json_object_get(f, "file")));
	cr_assert(json_is_null(json_object_get(f, "line")));
	cr_assert_eq(int_at(f, "offset"), offset);
	cr_assert_str_eq(str_at(f, "address"), address);
	cr_assert(json_is_true(json_object_get(f, "native")));
}

/* Everything build_heap put in, as a loaded document must show it. */
static void expect_document(json_t *doc)
{
	json_t *peak, *cur;

	cr_assert_str_eq(str_at(doc, "schema"), "memprof-bpf/snapshot");
	cr_assert_eq(int_at(doc, "version"), 1);
	cr_assert_eq(int_at(doc, "pid"), 4242);
	cr_assert_str_eq(str_at(doc, "comm"), "app");
	cr_assert_str_eq(str_at(doc, "cmdline"), "app --x");
	cr_assert_str_eq(str_at(doc, "reason"), "exit");
	cr_assert_str_eq(str_at(doc, "taken_at"), "2023-11-14T22:13:25.123Z");
	cr_assert_eq(int_at(doc, "rss_bytes"), 12345);
	cr_assert_eq(int_at(doc, "dropped_events"), 7);
	cr_assert_eq(int_at(doc, "unknown_frees"), 1);
	cr_assert_eq(int_at(doc, "allocations"), 3);
	cr_assert_eq(int_at(doc, "exit_code"), 2);
	cr_assert(json_is_null(json_object_get(doc, "exit_signal")));

	peak = json_object_get(doc, "peak");
	cr_assert(json_is_object(peak), "no peak section");
	cr_assert_eq(int_at(peak, "bytes"), 4500);
	cr_assert_eq(int_at(peak, "count"), 3);
	cr_assert_str_eq(str_at(peak, "at"), "2023-11-14T22:13:23.000Z");
	/* Largest first. */
	cr_assert_eq(json_array_size(json_object_get(peak, "stacks")), 3);
	expect_stack(json_object_get(peak, "stacks"), 0, 3000, 1, NULL, NULL,
		     0x2020, "0x402020");
	expect_stack(json_object_get(peak, "stacks"), 1, 1000, 1, "alloc_big",
		     "/usr/bin/app", 0x10, "0x401010");
	expect_stack(json_object_get(peak, "stacks"), 2, 500, 1, NULL, NULL, 0,
		     "0x403030");

	cur = json_object_get(doc, "current");
	cr_assert(json_is_object(cur), "no current section");
	cr_assert_eq(int_at(cur, "bytes"), 1500);
	cr_assert_eq(int_at(cur, "count"), 2);
	cr_assert_str_eq(str_at(cur, "at"), "2023-11-14T22:13:25.123Z");
	cr_assert_eq(json_array_size(json_object_get(cur, "stacks")), 2,
		     "a site with nothing live is left out");
	expect_stack(json_object_get(cur, "stacks"), 0, 1000, 1, "alloc_big",
		     "/usr/bin/app", 0x10, "0x401010");
	expect_stack(json_object_get(cur, "stacks"), 1, 500, 1, NULL, NULL, 0,
		     "0x403030");
}

Test(snapshot, build, .timeout = 10)
{
	json_t *doc;

	json_t *v1;
	char err[256] = "";

	build_heap();
	doc = snapshot__build(&meta, &h);
	cr_assert_not_null(doc);
	/* Built as version 2 (interned); read in version 1's shape. */
	cr_assert_eq(int_at(doc, "version"), 2);
	v1 = snapv2__expand(doc, err, sizeof(err));
	cr_assert_not_null(v1, "%s", err);
	expect_document(v1);
	json_decref(v1);
	json_decref(doc);
	heap__free(&h);
}

Test(snapshot, exit_code_and_signal, .timeout = 10)
{
	json_t *doc;

	build_heap();
	meta.exit_code = 9; /* SIGKILL */
	doc = snapshot__build(&meta, &h);
	cr_assert_not_null(doc);
	cr_assert(json_is_null(json_object_get(doc, "exit_code")));
	cr_assert_eq(int_at(doc, "exit_signal"), 9);
	json_decref(doc);
	meta.exit_code = -1; /* still running */
	doc = snapshot__build(&meta, &h);
	cr_assert(json_is_null(json_object_get(doc, "exit_code")));
	cr_assert(json_is_null(json_object_get(doc, "exit_signal")));
	json_decref(doc);
	meta.exit_code = 0;
	doc = snapshot__build(&meta, &h);
	cr_assert_eq(int_at(doc, "exit_code"), 0);
	cr_assert(json_is_null(json_object_get(doc, "exit_signal")));
	json_decref(doc);
	heap__free(&h);
}

Test(snapshot, save_and_load_round_trip, .init = make_dir, .fini = remove_dir,
     .timeout = 10)
{
	char path[256], err[512];
	struct stat st;
	json_t *doc, *back;

	build_heap();
	snprintf(path, sizeof(path), "%s/snap.json", dir);
	doc = snapshot__build(&meta, &h);
	cr_assert_not_null(doc);
	cr_assert_eq(snapfile__save(doc, path, false), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	cr_assert_eq(files_in_dir(), 1, "no temp file left behind");

	err[0] = '\0';
	back = snapfile__load(path, err, sizeof(err));
	cr_assert_not_null(back, "%s", err);
	expect_document(back);
	json_decref(back);
	json_decref(doc);
	heap__free(&h);
}

Test(snapshot, save_never_clobbers_unless_replacing, .init = make_dir,
     .fini = remove_dir, .timeout = 10)
{
	char path[256], err[512];
	json_t *doc, *back;

	build_heap();
	snprintf(path, sizeof(path), "%s/snap.json", dir);
	doc = snapshot__build(&meta, &h);
	cr_assert_eq(snapfile__save(doc, path, false), 0);
	json_decref(doc);

	meta.reason = "manual";
	doc = snapshot__build(&meta, &h);
	cr_assert_eq(snapfile__save(doc, path, false), -EEXIST);
	cr_assert_eq(files_in_dir(), 1, "no temp file left behind");
	back = snapfile__load(path, err, sizeof(err));
	cr_assert_not_null(back, "%s", err);
	cr_assert_str_eq(str_at(back, "reason"), "exit", "first file kept");
	json_decref(back);

	cr_assert_eq(snapfile__save(doc, path, true), 0);
	cr_assert_eq(files_in_dir(), 1);
	back = snapfile__load(path, err, sizeof(err));
	cr_assert_not_null(back, "%s", err);
	cr_assert_str_eq(str_at(back, "reason"), "manual", "replaced");
	json_decref(back);
	json_decref(doc);

	/* A directory that does not exist: an error, no crash. */
	cr_assert_eq(snapfile__save(json_object(), "/nonexistent/dir/x.json",
				    false),
		     -ENOENT);
	heap__free(&h);
}

static void expect_rejected(const char *path, const char *why)
{
	char err[512];

	memset(err, 'x', sizeof(err));
	cr_assert_null(snapfile__load(path, err, sizeof(err)), "%s", why);
	cr_assert_neq(err[0], '\0');
	cr_assert_not_null(memchr(err, '\0', sizeof(err)));
	cr_assert_null(strchr(err, '\n'), "%s: one line: %s", why, err);
	cr_assert_eq(strncmp(err, path, strlen(path)), 0, "names the file");
}

Test(snapshot, load_rejects_bad_files, .init = make_dir, .fini = remove_dir,
     .timeout = 10)
{
	char path[256], good[256], err[512];
	char *text;
	json_t *doc;
	FILE *f;
	long len;

	build_heap();
	snprintf(good, sizeof(good), "%s/good.json", dir);
	doc = snapshot__build(&meta, &h);
	cr_assert_eq(snapfile__save(doc, good, false), 0);
	json_decref(doc);

	/* Truncated in the middle. */
	f = fopen(good, "r");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = malloc(len);
	cr_assert_eq(fread(text, 1, len, f), (size_t)len);
	fclose(f);
	snprintf(path, sizeof(path), "%s/trunc.json", dir);
	write_file(path, text, len / 2);
	expect_rejected(path, "truncated");
	free(text);

	snprintf(path, sizeof(path), "%s/other.json", dir);
	write_file(path, "{\"hello\": 1}\n", 13);
	expect_rejected(path, "not a snapshot");
	cr_assert_null(snapfile__load(path, err, sizeof(err)));
	cr_assert_not_null(strstr(err, "not a memprof-bpf snapshot"), "%s",
			   err);

	snprintf(path, sizeof(path), "%s/newer.json", dir);
	write_file(path,
		   "{\"schema\": \"memprof-bpf/snapshot\", \"version\": 2}",
		   48);
	expect_rejected(path, "newer version");

	snprintf(path, sizeof(path), "%s/damaged.json", dir);
	write_file(path,
		   "{\"schema\": \"memprof-bpf/snapshot\", \"version\": 1, "
		   "\"peak\": {\"bytes\": 1, \"stacks\": [{\"bytes\": "
		   "\"x\"}]}}",
		   100);
	expect_rejected(path, "damaged section");

	snprintf(path, sizeof(path), "%s/empty.json", dir);
	write_file(path, "", 0);
	expect_rejected(path, "empty");

	snprintf(path, sizeof(path), "%s/missing.json", dir);
	expect_rejected(path, "missing");
	heap__free(&h);
}

/*
 * The fuzzer's way in (tests/fuzz): the same checks from memory, with
 * the given name in the message, and no NUL needed after the text.
 */
Test(snapshot, load_buffer_checks_like_load, .timeout = 10)
{
	static const char other[] = "{\"hello\": 1}";
	char err[512], *text;
	json_t *doc, *back;
	size_t len;

	build_heap();
	doc = snapshot__build(&meta, &h);
	text = json_dumps(doc, JSON_INDENT(1));
	cr_assert_not_null(text);
	len = strlen(text);
	text[len] = 'x'; /* len bytes, not a C string */
	back = snapfile__load_buffer(text, len, "mem", err, sizeof(err));
	cr_assert_not_null(back, "%s", err);
	expect_document(back);
	json_decref(back);

	cr_assert_null(
		snapfile__load_buffer(text, len / 2, "mem", err, sizeof(err)));
	cr_assert_eq(strncmp(err, "mem: not a valid snapshot", 25), 0, "%s",
		     err);
	cr_assert_null(strchr(err, '\n'), "one line: %s", err);
	cr_assert_null(snapfile__load_buffer(other, sizeof(other) - 1, "mem",
					     err, sizeof(err)));
	cr_assert_str_eq(err, "mem: not a memprof-bpf snapshot");
	cr_assert_null(snapfile__load_buffer(text, 0, "mem", err, sizeof(err)));
	free(text);
	json_decref(doc);
	heap__free(&h);
}

Test(snapshot, mono_to_real, .timeout = 10)
{
	struct timespec r, m;
	int64_t want, got = snapshot__mono_to_real();

	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m);
	want = (r.tv_sec - m.tv_sec) * 1000000000LL + (r.tv_nsec - m.tv_nsec);
	cr_assert_lt(llabs(want - got), 100000000LL);
	cr_assert_gt(got, T0 / 2, "realtime is well after the boot");
}

/*
 * The timeline: its buckets, the peak as the peak section has it (4500
 * bytes at T0 + 3 s), and the cell runs' spans as offsets from its
 * start, "(before attach)" and a run over before the start left out.
 */
Test(snapshot, timeline, .timeout = 10)
{
	static struct timeline tl;
	struct cell_run runs[4] = {
		{ .label = "In [1]",
		  .started_ns = 2950 * MS,
		  .finished_ns = 3100 * MS },
		{ .label = "(before attach)",
		  .started_ns = 2900 * MS,
		  .before = true },
		{ .label = "In [0]",
		  .started_ns = 1000 * MS,
		  .finished_ns = 2000 * MS },
		{ .label = "In [2]", .started_ns = 3150 * MS },
	};
	struct cells c = {
		.runs = runs, .n = 4, .cap = 4, .current = 3, .peak_run = -1
	};
	json_t *doc, *t, *cells,
		*want = json_pack("[iiii]", 1000, 4500, 1500, 1500);

	build_heap();
	timeline__init(&tl, 2900 * MS);
	timeline__push(&tl, 2950 * MS, 1000, 1000);
	timeline__note(&tl, 3000 * MS, 4500);
	timeline__push(&tl, 3050 * MS, 4500, 1500);
	timeline__push(&tl, 3200 * MS, 1500, 1500);
	meta.timeline = &tl;
	meta.cells = &c;
	doc = snapshot__build(&meta, &h);
	t = json_object_get(doc, "timeline");
	cr_assert(json_is_object(t));
	cr_assert_str_eq(str_at(t, "start_at"), "2023-11-14T22:13:22.900Z");
	cr_assert_eq(int_at(t, "interval_ms"), 100);
	cr_assert(json_equal(json_object_get(t, "live"), want));
	json_decref(want);
	cr_assert_eq(int_at(json_object_get(t, "peak"), "at_ms"), 100);
	cr_assert_eq(int_at(json_object_get(t, "peak"), "bytes"), 4500);
	cells = json_object_get(t, "cells");
	cr_assert_eq(json_array_size(cells), 2);
	cr_assert_str_eq(str_at(json_array_get(cells, 0), "label"), "In [1]");
	cr_assert_eq(int_at(json_array_get(cells, 0), "start_ms"), 50);
	cr_assert_eq(int_at(json_array_get(cells, 0), "end_ms"), 200);
	cr_assert_eq(int_at(json_array_get(cells, 1), "start_ms"), 250);
	cr_assert(json_is_null(json_object_get(json_array_get(cells, 1), "end_"
									 "m"
									 "s")));
	json_decref(doc);
	meta.timeline = NULL; /* none: null, as in a heap never sampled */
	meta.cells = NULL;
	doc = snapshot__build(&meta, &h);
	cr_assert(json_is_null(json_object_get(doc, "timeline")));
	json_decref(doc);
	heap__free(&h);
}
