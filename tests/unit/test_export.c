// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <errno.h>
#include <sys/stat.h>
#include <zlib.h>
#include "output/export.h"
#include "format/snapfile.h"
#include "output/snapshot.h"
#include "unit.h"

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/memprof-export-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* Two stacks at the peak, one in a cell: known folded lines. */
static json_t *doc(void)
{
	static const char text[] =
		"{\"schema\":\"memprof-bpf/snapshot\",\"version\":1,"
		"\"pid\":7,\"comm\":\"py\",\"dropped_events\":0,"
		"\"peak\":{\"bytes\":3000,\"count\":2,\"cells\":[],"
		" \"stacks\":["
		"  {\"bytes\":2000,\"count\":1,\"cell\":\"In [1]\",\"frames\":["
		"   {\"function\":\"f\",\"file\":\"/x/a.py\",\"line\":4,"
		"    \"native\":false}]},"
		"  {\"bytes\":1000,\"count\":1,\"cell\":null,\"frames\":["
		"   {\"function\":\"g\",\"file\":\"/x/b.py\",\"line\":9,"
		"    \"native\":false}]}]},"
		"\"current\":{\"bytes\":0,\"count\":0,\"stacks\":[]}}";
	json_t *d = json_loads(text, 0, NULL);

	cr_assert_not_null(d);
	return d;
}

static char *slurp(const char *path, struct stat *st)
{
	FILE *f = fopen(path, "r");
	char *buf;

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fileno(f), st), 0);
	buf = calloc(1, st->st_size + 1);
	cr_assert_eq(fread(buf, 1, st->st_size, f), (size_t)st->st_size);
	fclose(f);
	return buf;
}

Test(export, suffixes, .timeout = 10)
{
	cr_assert_str_eq(export__suffix(SNAP_SNAPSHOT), ".json.gz");
	cr_assert_str_eq(export__suffix(SNAP_JSON), ".json");
	cr_assert_str_eq(export__suffix(SNAP_FOLDED), ".folded");
	cr_assert_str_eq(export__suffix(SNAP_HTML), ".html");
	cr_assert_str_eq(export__suffix(SNAP_PPROF), ".pb.gz");
}

Test(export, folded_file, .init = make_dir, .fini = remove_dir, .timeout = 10)
{
	char path[128], *text;
	struct stat st;
	json_t *d = doc();

	snprintf(path, sizeof(path), "%s/s.folded", dir);
	cr_assert_eq(export__save(d, SNAP_FOLDED, path, false), 0);
	text = slurp(path, &st);
	cr_assert_str_eq(text, "In [1];f (a.py:4) 2000\ng (b.py:9) 1000\n");
	cr_assert_eq(st.st_mode & 07777, 0600);
	/* Never clobbers unless replacing, like the JSON files. */
	cr_assert_eq(export__save(d, SNAP_FOLDED, path, false), -EEXIST);
	cr_assert_eq(export__save(d, SNAP_FOLDED, path, true), 0);
	free(text);
	json_decref(d);
}

Test(export, html_and_json_files, .init = make_dir, .fini = remove_dir,
     .timeout = 10)
{
	char path[128], err[256], *text;
	struct stat st;
	json_t *d = doc(), *back;

	snprintf(path, sizeof(path), "%s/s.html", dir);
	cr_assert_eq(export__save(d, SNAP_HTML, path, false), 0);
	text = slurp(path, &st);
	cr_assert_eq(strncmp(text, "<!DOCTYPE html>", 15), 0);
	cr_assert(strstr(text, "\"In [1]\""));
	cr_assert_eq(st.st_mode & 07777, 0600);
	free(text);

	snprintf(path, sizeof(path), "%s/s.json", dir);
	cr_assert_eq(export__save(d, SNAP_JSON, path, false), 0);
	back = snapfile__load(path, err, sizeof(err));
	cr_assert_not_null(back, "%s", err);
	cr_assert(json_equal(back, d));
	json_decref(back);
	json_decref(d);
}

/* pprof is binary: gzip's magic first, and no newline after its trailer. */
Test(export, pprof_file, .init = make_dir, .fini = remove_dir, .timeout = 10)
{
	char path[128], *data;
	unsigned char out[4096];
	struct stat st;
	json_t *d = doc();
	z_stream z = { 0 };

	snprintf(path, sizeof(path), "%s/s.pb.gz", dir);
	cr_assert_eq(export__save(d, SNAP_PPROF, path, false), 0);
	data = slurp(path, &st);
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert_eq((unsigned char)data[0], 0x1f);
	cr_assert_eq((unsigned char)data[1], 0x8b);
	cr_assert_eq(inflateInit2(&z, 15 + 32), Z_OK);
	z.next_in = (Bytef *)data;
	z.avail_in = st.st_size;
	z.next_out = out;
	z.avail_out = sizeof(out);
	cr_assert_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
	cr_assert_eq(z.avail_in, 0, "%u bytes after the gzip stream",
		     z.avail_in);
	inflateEnd(&z);
	free(data);
	json_decref(d);
}
