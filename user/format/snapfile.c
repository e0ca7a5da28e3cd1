// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include "lib/atomicfile.h"
#include "snapfile.h"
#include "snapv2.h"

#define GZIP_WINDOW (15 + 16) /* zlib's window bits for a gzip stream */
#define MAX_EXPANDED (4ull << 30) /* a gzipped snapshot inflates to this */

void snapfile__iso_time(int64_t real_ns, char *buf, size_t size)
{
	time_t sec = real_ns / 1000000000;
	struct tm tm;
	char base[32];

	gmtime_r(&sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%03dZ", base,
		 (int)((real_ns / 1000000) % 1000));
}

/* ---- writing ------------------------------------------------------------ */

int snapfile__gzip(const void *in, size_t len, char **out, size_t *outlen)
{
	z_stream z = { 0 };
	char *buf;
	size_t cap;
	int rc;

	if (len > UINT_MAX)
		return -EFBIG; /* zlib counts its input in an unsigned int */
	if (deflateInit2(&z, 6, Z_DEFLATED, GZIP_WINDOW, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&z, len);
	buf = malloc(cap ? cap : 1);
	if (!buf) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = len;
	z.next_out = (Bytef *)buf;
	z.avail_out = cap;
	rc = deflate(&z, Z_FINISH); /* deflateBound: one call is enough */
	*outlen = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	return 0;
}

static bool is_v2(json_t *doc)
{
	return json_integer_value(json_object_get(doc, "version")) == 2;
}

int snapfile__encode(json_t *doc, char **out, size_t *len)
{
	bool v2 = is_v2(doc);
	char *text = json_dumps(doc, v2 ? JSON_COMPACT | JSON_SORT_KEYS
					: JSON_INDENT(1) | JSON_SORT_KEYS);
	int err;

	if (!text)
		return -ENOMEM;
	if (!v2) {
		*out = text;
		*len = strlen(text);
		return 0;
	}
	err = snapfile__gzip(text, strlen(text), out, len);
	free(text);
	return err;
}

int snapfile__save(json_t *doc, const char *path, bool replace)
{
	char *buf;
	size_t len;
	int err = snapfile__encode(doc, &buf, &len);

	if (err)
		return err;
	err = is_v2(doc) ? snapfile__save_binary(buf, len, path, replace)
			 : snapfile__save_text(buf, len, path, replace);
	free(buf);
	return err;
}

int snapfile__save_text(const char *text, size_t len, const char *path,
			bool replace)
{
	struct atomicfile_opts o = { .replace = replace,
				     .durable = true,
				     .newline = true };

	atomicfile__sudo_user(&o.uid, &o.gid);
	return atomicfile__write(path, text, len, &o);
}

int snapfile__save_binary(const void *data, size_t len, const char *path,
			  bool replace)
{
	struct atomicfile_opts o = { .replace = replace, .durable = true };

	atomicfile__sudo_user(&o.uid, &o.gid);
	return atomicfile__write(path, data, len, &o);
}

/* ---- reading ------------------------------------------------------------ */

static bool valid_section(json_t *s)
{
	json_t *st = json_object_get(s, "stacks");
	size_t i;
	json_t *e;

	if (!json_is_object(s) ||
	    !json_is_integer(json_object_get(s, "bytes")) || !json_is_array(st))
		return false;
	json_array_foreach(st, i, e)
	{
		if (!json_is_integer(json_object_get(e, "bytes")) ||
		    !json_is_array(json_object_get(e, "frames")))
			return false;
	}
	return true;
}

/*
 * The checks both loaders share: the schema and version, and the peak and
 * current sections, of the document expanded to version 1's shape. Takes
 * doc (decref'd when rejected).
 */
static json_t *checked(json_t *doc, const char *name, char *err, size_t errlen)
{
	json_t *schema = json_object_get(doc, "schema");
	json_t *version = json_object_get(doc, "version");
	char why[256];
	json_t *v1 = NULL;

	if (!json_is_string(schema) ||
	    strcmp(json_string_value(schema), SNAPSHOT_SCHEMA) != 0 ||
	    !json_is_integer(version)) {
		snprintf(err, errlen, "%s: not a memprof-bpf snapshot", name);
	} else if (json_integer_value(version) > SNAPSHOT_VERSION) {
		snprintf(err, errlen,
			 "%s: snapshot version %lld is newer than this "
			 "memprof-bpf (%d)",
			 name, (long long)json_integer_value(version),
			 SNAPSHOT_VERSION);
	} else if (json_integer_value(version) == 2 &&
		   !(v1 = snapv2__expand(doc, why, sizeof(why)))) {
		snprintf(err, errlen, "%s: %s", name, why);
	} else {
		if (json_integer_value(version) == 2) {
			json_decref(doc);
			doc = v1;
		}
		if (valid_section(json_object_get(doc, "peak")) &&
		    valid_section(json_object_get(doc, "current")))
			return doc;
		snprintf(err, errlen,
			 "%s: snapshot is damaged (peak/current sections)",
			 name);
	}
	json_decref(doc);
	return NULL;
}

/* The whole file in memory (a snapshot is read whole anyway). */
static int read_all(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16, n = 0, got;
	char *b = malloc(cap), *nb;

	if (!f || !b) {
		int err = f ? -ENOMEM : -errno;

		free(b);
		if (f)
			fclose(f);
		return err;
	}
	while ((got = fread(b + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				fclose(f);
				return -ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
	}
	got = ferror(f);
	fclose(f);
	if (got) {
		free(b);
		return -EIO;
	}
	*buf = b;
	*len = n;
	return 0;
}

json_t *snapfile__load(const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	json_t *doc;
	int rc = read_all(path, &buf, &len);

	if (rc) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return NULL;
	}
	doc = snapfile__load_buffer(buf, len, path, err, errlen);
	free(buf);
	return doc;
}

static bool gzipped(const char *buf, size_t len)
{
	return len >= 2 && (unsigned char)buf[0] == 0x1f &&
	       (unsigned char)buf[1] == 0x8b;
}

/* A gzip stream inflated into a malloc'd buffer; -EINVAL if damaged. */
static int gunzip(const char *in, size_t len, char **out, size_t *outlen)
{
	z_stream z = { 0 };
	size_t cap = len * 8 + 4096;
	char *buf, *nb;
	int rc = Z_OK;

	if (len > UINT_MAX)
		return -EFBIG; /* zlib counts its input in an unsigned int */
	buf = malloc(cap);
	if (!buf || inflateInit2(&z, GZIP_WINDOW) != Z_OK) {
		free(buf);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = len;
	while (rc == Z_OK) {
		if (z.total_out == cap) {
			if (cap >= MAX_EXPANDED ||
			    !(nb = realloc(buf, cap * 2))) {
				rc = Z_MEM_ERROR;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		z.next_out = (Bytef *)buf + z.total_out;
		z.avail_out = cap - z.total_out;
		rc = inflate(&z, Z_NO_FLUSH);
	}
	*outlen = z.total_out;
	inflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(buf);
		return rc == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
	}
	*out = buf;
	return 0;
}

json_t *snapfile__load_buffer(const char *buf, size_t len, const char *name,
			      char *err, size_t errlen)
{
	char *plain = NULL;
	json_error_t je;
	json_t *doc;
	int rc;

	if (gzipped(buf, len)) {
		rc = gunzip(buf, len, &plain, &len);
		if (rc) {
			snprintf(err, errlen, "%s: not a valid snapshot (%s)",
				 name,
				 rc == -EINVAL ? "damaged gzip data"
					       : strerror(-rc));
			return NULL;
		}
		buf = plain;
	}
	doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	free(plain);
	if (!doc) {
		snprintf(err, errlen, "%s: not a valid snapshot (line %d: %s)",
			 name, je.line, je.text);
		return NULL;
	}
	return checked(doc, name, err, errlen);
}
