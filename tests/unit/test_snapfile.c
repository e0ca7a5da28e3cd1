// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <errno.h>
#include "format/snapfile.h"
#include "format/snapv2.h"
#include "unit.h"

#define T0 1700000000000000000LL /* 2023-11-14T22:13:20Z */

/* The smallest document the reader accepts: schema, peak and current. */
static const char MINIMAL[] = "{\"schema\": \"memprof-bpf/snapshot\", "
			      "\"version\": 1,"
			      " \"peak\": {\"bytes\": 10, \"stacks\": "
			      "[{\"bytes\": 10,"
			      " \"frames\": []}]}, \"current\": {\"bytes\": 0, "
			      "\"stacks\": []}}";

static json_t *load_text(const char *text, char *err, size_t errlen)
{
	return snapfile__load_buffer(text, strlen(text), "t", err, errlen);
}

Test(snapfile, minimal_document_accepted, .timeout = 10)
{
	char err[256] = "";
	json_t *doc = load_text(MINIMAL, err, sizeof(err));

	cr_assert_not_null(doc, "%s", err);
	json_decref(doc);
}

/* Each way a file can be wrong has its own one-line reason. */
Test(snapfile, rejects_with_one_line_reason, .timeout = 10)
{
	char err[256];

	cr_assert_null(load_text("{\"schema\": \"x\"}", err, sizeof(err)));
	cr_assert_str_eq(err, "t: not a memprof-bpf snapshot");
	cr_assert_null(load_text("{\"schema\": \"memprof-bpf/snapshot\","
				 " \"version\": 99}",
				 err, sizeof(err)));
	cr_assert_str_eq(err, "t: snapshot version 99 is newer than this "
			      "memprof-bpf (2)");
	cr_assert_null(load_text("{\"schema\": \"memprof-bpf/snapshot\","
				 " \"version\": 1, \"peak\": {}}",
				 err, sizeof(err)));
	cr_assert_str_eq(err, "t: snapshot is damaged (peak/current sections)");
	cr_assert_null(load_text("{\"schema\": ", err, sizeof(err)));
	cr_assert_eq(strncmp(err, "t: not a valid snapshot (line 1", 31), 0,
		     "%s", err);
}

/* A written snapshot ends with a newline and reads back the same. */
Test(snapfile, save_then_load, .timeout = 10)
{
	char path[] = "/tmp/memprof-snapfile-XXXXXX", file[64], err[256];
	json_t *doc = load_text(MINIMAL, err, sizeof(err)), *back;
	FILE *f;
	int c, last = 0;

	cr_assert_not_null(mkdtemp(path));
	snprintf(file, sizeof(file), "%s/s.json", path);
	cr_assert_eq(snapfile__save(doc, file, false), 0);
	cr_assert_eq(snapfile__save(doc, file, false), -EEXIST);
	f = fopen(file, "r");
	while ((c = fgetc(f)) != EOF)
		last = c;
	fclose(f);
	cr_assert_eq(last, '\n');
	back = snapfile__load(file, err, sizeof(err));
	cr_assert(json_equal(doc, back), "%s", err);
	json_decref(back);
	json_decref(doc);
	unlink(file);
	rmdir(path);
}

/*
 * Version 2 is written compact and gzipped, and read back in version
 * 1's shape: the same document as before it was packed.
 */
Test(snapfile, version_two_gzipped_round_trip, .timeout = 10)
{
	char path[] = "/tmp/memprof-snapfile-XXXXXX", file[64], err[256];
	json_t *v1 = load_text(MINIMAL, err, sizeof(err)), *v2, *back;
	unsigned char magic[2] = { 0 };
	FILE *f;

	cr_assert_not_null(mkdtemp(path));
	snprintf(file, sizeof(file), "%s/s.json.gz", path);
	v2 = snapv2__pack(v1);
	cr_assert_eq(snapfile__save(v2, file, false), 0);
	f = fopen(file, "rb");
	cr_assert_eq(fread(magic, 1, 2, f), 2);
	fclose(f);
	cr_assert(magic[0] == 0x1f && magic[1] == 0x8b, "gzip");
	back = snapfile__load(file, err, sizeof(err));
	cr_assert_not_null(back, "%s", err);
	cr_assert(json_equal(back, v1));
	json_decref(back);
	json_decref(v2);
	json_decref(v1);
	unlink(file);
	rmdir(path);
}

/* Damaged gzip data, and a version 2 with a bad index, are refused. */
Test(snapfile, damaged_gzip_and_bad_index, .timeout = 10)
{
	static const char bad_v2[] = "{\"schema\":\"memprof-bpf/"
				     "snapshot\",\"version\":2,"
				     "\"strings\":[],\"frames\":[],\"stacks\":["
				     "],"
				     "\"peak\":{\"bytes\":1,\"stacks\":[{"
				     "\"stack\":3}]},"
				     "\"current\":{\"bytes\":0,\"stacks\":[]}}";
	char err[256], *gz;
	size_t len;

	cr_assert_eq(snapfile__gzip(MINIMAL, strlen(MINIMAL), &gz, &len), 0);
	gz[len / 2] ^= 0x55; /* the CRC, or the stream, now fails */
	cr_assert_null(snapfile__load_buffer(gz, len, "t", err, sizeof(err)));
	cr_assert_str_eq(err, "t: not a valid snapshot (damaged gzip data)");
	cr_assert_null(snapfile__load_buffer(gz, 5, "t", err, sizeof(err)),
		       "cut short");
	free(gz);
	cr_assert_null(load_text(bad_v2, err, sizeof(err)));
	cr_assert_str_eq(err, "t: snapshot is damaged (stack entry 0)");
}

Test(snapfile, iso_time, .timeout = 10)
{
	char buf[40];

	snapfile__iso_time(0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
	snapfile__iso_time(999999999, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1970-01-01T00:00:00.999Z");
	snapfile__iso_time(T0 + 123456789, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2023-11-14T22:13:20.123Z");
	snapfile__iso_time(951782400LL * 1000000000LL + 5000000, buf,
			   sizeof(buf));
	cr_assert_str_eq(buf, "2000-02-29T00:00:00.005Z");
}
