// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <zlib.h>
#include "format/pprof.h"
#include "profile.pb-c.h"
#include "unit.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Function Function;

/*
 * Peak: 1000 B in one block from main.py -> lib.py -> alloc_buf (libx, in
 * "In [1]"), 300 B in 3 blocks from main.py -> an unnamed native frame.
 * Current: the first stack again (500 B), and 64 B from a stack only the
 * current section has.
 */
static json_t *doc(void)
{
	static const char text[] =
		"{\"schema\":\"memprof-bpf/snapshot\",\"version\":1,"
		"\"pid\":7,\"comm\":\"py\",\"reason\":\"exit\","
		"\"cmdline\":\"python3 main.py\","
		"\"taken_at\":\"2026-12-05T10:00:01.250Z\",\"dropped_events\":"
		"0,"
		"\"peak\":{\"bytes\":1300,\"count\":4,\"cells\":[],\"stacks\":["
		" {\"bytes\":1000,\"count\":1,\"cell\":\"In [1]\",\"frames\":["
		"  {\"function\":\"f\",\"file\":\"/x/main.py\",\"line\":3,"
		"   \"native\":false},"
		"  {\"function\":\"g\",\"file\":\"/x/lib.py\",\"line\":7,"
		"   \"native\":false},"
		"  {\"function\":\"alloc_buf\",\"file\":null,\"line\":null,"
		"   \"module\":\"/usr/lib/libx.so\",\"offset\":4,"
		"   \"address\":\"0x1234\",\"native\":true}]},"
		" {\"bytes\":300,\"count\":3,\"cell\":null,\"frames\":["
		"  {\"function\":\"f\",\"file\":\"/x/main.py\",\"line\":3,"
		"   \"native\":false},"
		"  {\"function\":null,\"file\":null,\"line\":null,"
		"   \"module\":\"/lib/liby.so\",\"offset\":2748,"
		"   \"address\":\"0xabc\",\"native\":true}]}]},"
		"\"current\":{\"bytes\":564,\"count\":3,\"cells\":[],"
		"\"stacks\":["
		" {\"bytes\":500,\"count\":1,\"cell\":\"In [1]\",\"frames\":["
		"  {\"function\":\"f\",\"file\":\"/x/main.py\",\"line\":3,"
		"   \"native\":false},"
		"  {\"function\":\"g\",\"file\":\"/x/lib.py\",\"line\":7,"
		"   \"native\":false},"
		"  {\"function\":\"alloc_buf\",\"file\":null,\"line\":null,"
		"   \"module\":\"/usr/lib/libx.so\",\"offset\":4,"
		"   \"address\":\"0x1234\",\"native\":true}]},"
		" {\"bytes\":64,\"count\":2,\"cell\":null,\"frames\":["
		"  {\"function\":\"h\",\"file\":\"/x/main.py\",\"line\":9,"
		"   \"native\":false}]}]}}";
	json_t *d = json_loads(text, 0, NULL);

	cr_assert_not_null(d);
	return d;
}

/* gunzip a whole buffer (windowBits 15 + 32: gzip header expected). */
static uint8_t *gunzip(const char *gz, size_t len, size_t *out_len)
{
	size_t cap = 1 << 20;
	uint8_t *out = malloc(cap);
	z_stream z = { 0 };

	cr_assert_not_null(out);
	cr_assert_eq(inflateInit2(&z, 15 + 32), Z_OK);
	z.next_in = (Bytef *)gz;
	z.avail_in = len;
	z.next_out = out;
	z.avail_out = cap;
	cr_assert_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
	cr_assert_eq(z.avail_in, 0, "bytes after the gzip stream");
	*out_len = z.total_out;
	inflateEnd(&z);
	return out;
}

/* Write doc as pprof into memory, check the gzip magic, decode it. */
static Profile *decoded(json_t *d)
{
	char *gz = NULL;
	size_t gz_len = 0, len;
	FILE *mem = open_memstream(&gz, &gz_len);
	uint8_t *raw;
	Profile *p;

	cr_assert_not_null(mem);
	cr_assert_eq(pprof__write(mem, d), 0);
	cr_assert_eq(fclose(mem), 0);
	cr_assert_geq(gz_len, 2);
	cr_assert_eq((uint8_t)gz[0], 0x1f);
	cr_assert_eq((uint8_t)gz[1], 0x8b);
	raw = gunzip(gz, gz_len, &len);
	p = perftools__profiles__profile__unpack(NULL, len, raw);
	cr_assert_not_null(p, "protobuf-c could not decode it");
	free(raw);
	free(gz);
	return p;
}

static const char *str(const Profile *p, int64_t i)
{
	cr_assert(i >= 0 && (size_t)i < p->n_string_table, "string %lld",
		  (long long)i);
	return p->string_table[i];
}

static const Location *location(const Profile *p, uint64_t id)
{
	size_t i;

	for (i = 0; i < p->n_location; i++)
		if (p->location[i]->id == id)
			return p->location[i];
	cr_assert_fail("no location %llu", (unsigned long long)id);
	return NULL;
}

/* The function name of a location's (only) line. */
static const Function *function(const Profile *p, const Location *l)
{
	size_t i;

	cr_assert_eq(l->n_line, 1);
	for (i = 0; i < p->n_function; i++)
		if (p->function[i]->id == l->line[0]->function_id)
			return p->function[i];
	cr_assert_fail("no function %llu",
		       (unsigned long long)l->line[0]->function_id);
	return NULL;
}

static const char *leaf_name(const Profile *p, const Sample *s)
{
	return str(p, function(p, location(p, s->location_id[0]))->name);
}

/* The sample whose leaf function is named name. */
static const Sample *sample(const Profile *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->n_sample; i++)
		if (!strcmp(leaf_name(p, p->sample[i]), name))
			return p->sample[i];
	cr_assert_fail("no sample with leaf %s", name);
	return NULL;
}

static void assert_values(const Sample *s, int64_t a, int64_t b, int64_t c,
			  int64_t d)
{
	cr_assert_eq(s->n_value, 4);
	cr_assert_eq(s->value[0], a);
	cr_assert_eq(s->value[1], b);
	cr_assert_eq(s->value[2], c);
	cr_assert_eq(s->value[3], d);
}

Test(pprof, header_and_sample_types, .timeout = 10)
{
	static const char *const types[][2] = {
		{ "inuse_objects", "count" },
		{ "inuse_space", "bytes" },
		{ "current_objects", "count" },
		{ "current_space", "bytes" },
	};
	json_t *d = doc();
	Profile *p = decoded(d);
	size_t i;

	cr_assert_geq(p->n_string_table, 1);
	cr_assert_str_eq(p->string_table[0], "");
	cr_assert_eq(p->n_sample_type, 4);
	for (i = 0; i < 4; i++) {
		cr_assert_str_eq(str(p, p->sample_type[i]->type), types[i][0]);
		cr_assert_str_eq(str(p, p->sample_type[i]->unit), types[i][1]);
	}
	cr_assert_str_eq(str(p, p->default_sample_type), "inuse_space");
	cr_assert_eq(p->time_nanos, 1796464801250000000LL);
	cr_assert_eq(p->n_comment, 2);
	cr_assert_str_eq(str(p, p->comment[1]), "command: python3 main.py");
	perftools__profiles__profile__free_unpacked(p, NULL);
	json_decref(d);
}

/* Peak and current of one stack share a sample; one-sided ones get 0s. */
Test(pprof, samples_merge_sections, .timeout = 10)
{
	json_t *d = doc();
	Profile *p = decoded(d);

	cr_assert_eq(p->n_sample, 3);
	assert_values(sample(p, "alloc_buf"), 1, 1000, 1, 500);
	assert_values(sample(p, "liby.so+0xabc"), 3, 300, 0, 0);
	assert_values(sample(p, "h"), 0, 0, 2, 64);
	perftools__profiles__profile__free_unpacked(p, NULL);
	json_decref(d);
}

/* Leaf first; one Location per distinct frame; native ones addressed. */
Test(pprof, locations_leaf_first_and_interned, .timeout = 10)
{
	json_t *d = doc();
	Profile *p = decoded(d);
	const Sample *a = sample(p, "alloc_buf"), *b = sample(p, "liby.so+"
								 "0xabc");
	const Location *leaf, *root;

	cr_assert_eq(p->n_location, 5); /* f, g, alloc_buf, liby+0xabc, h */
	cr_assert_eq(a->n_location_id, 3);
	leaf = location(p, a->location_id[0]);
	root = location(p, a->location_id[2]);
	cr_assert_eq(leaf->address, 0x1234);
	cr_assert_str_eq(str(p, function(p, leaf)->filename), "/usr/lib/"
							      "libx.so");
	cr_assert_neq(leaf->mapping_id, 0);
	cr_assert_str_eq(str(p, p->mapping[leaf->mapping_id - 1]->filename),
			 "/usr/lib/libx.so");
	cr_assert_str_eq(str(p, function(p, root)->name), "f");
	cr_assert_str_eq(str(p, function(p, root)->filename), "/x/main.py");
	/* pprof demangles a name equal to its system_name: native only. */
	cr_assert_eq(function(p, root)->system_name, 0);
	cr_assert_eq(function(p, leaf)->system_name, function(p, leaf)->name);
	cr_assert_eq(root->line[0]->line, 3);
	cr_assert_eq(root->mapping_id, 0);
	cr_assert_str_eq(
		str(p, function(p, location(p, a->location_id[1]))->name), "g");
	/* The same frame in two stacks is one Location. */
	cr_assert_eq(b->n_location_id, 2);
	cr_assert_eq(b->location_id[1], a->location_id[2]);
	cr_assert_eq(location(p, b->location_id[0])->address, 0xabc);
	cr_assert_eq(p->n_mapping, 2);
	perftools__profiles__profile__free_unpacked(p, NULL);
	json_decref(d);
}

/* The cell is a string label; stacks outside cells have none. */
Test(pprof, cell_label, .timeout = 10)
{
	json_t *d = doc();
	Profile *p = decoded(d);
	const Sample *a = sample(p, "alloc_buf"), *b = sample(p, "liby.so+"
								 "0xabc");

	cr_assert_eq(a->n_label, 1);
	cr_assert_str_eq(str(p, a->label[0]->key), "cell");
	cr_assert_str_eq(str(p, a->label[0]->str), "In [1]");
	cr_assert_eq(b->n_label, 0);
	perftools__profiles__profile__free_unpacked(p, NULL);
	json_decref(d);
}

/* No stacks, no header fields: still a valid, empty profile. */
Test(pprof, empty_document, .timeout = 10)
{
	json_t *d = json_pack("{s:{s:[]}, s:{s:[]}}", "peak", "stacks",
			      "current", "stacks");
	Profile *p = decoded(d);

	cr_assert_eq(p->n_sample, 0);
	cr_assert_eq(p->n_location, 0);
	cr_assert_eq(p->time_nanos, 0);
	cr_assert_str_eq(p->string_table[0], "");
	perftools__profiles__profile__free_unpacked(p, NULL);
	json_decref(d);
}

/* Counts at the int64 limits saturate when one stack appears twice. */
Test(pprof, sums_clamp, .timeout = 10)
{
	json_t *d = json_loads("{\"peak\":{\"stacks\":["
			       " {\"bytes\":9223372036854775807,\"count\":1,"
			       "\"frames\":[]},"
			       " {\"bytes\":9223372036854775807,\"count\":1,"
			       "\"frames\":[]}]},"
			       " \"current\":{\"stacks\":[]}}",
			       0, NULL);
	Profile *p = decoded(d);

	cr_assert_eq(p->n_sample, 1);
	assert_values(p->sample[0], 2, INT64_MAX, 0, 0);
	perftools__profiles__profile__free_unpacked(p, NULL);
	json_decref(d);
}

/* The program's own module is the first mapping: pprof's "File:". */
Test(pprof, program_mapping_first, .timeout = 10)
{
	json_t *d = doc();
	Profile *p;

	json_object_set_new(d, "comm", json_string("liby"));
	p = decoded(d);
	cr_assert_eq(p->n_mapping, 2);
	cr_assert_str_eq(str(p, p->mapping[0]->filename), "/lib/liby.so");
	cr_assert_eq(p->mapping[0]->id, 1);
	perftools__profiles__profile__free_unpacked(p, NULL);
	json_decref(d);
}
