// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lib/atomicfile.h"
#include "snapfile.h"

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

int snapfile__save(json_t *doc, const char *path, bool replace)
{
	char *text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	int err;

	if (!text)
		return -ENOMEM;
	err = snapfile__save_text(text, strlen(text), path, replace);
	free(text);
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
 * current sections. Takes doc (decref'd when rejected).
 */
static json_t *checked(json_t *doc, const char *name, char *err, size_t errlen)
{
	json_t *schema = json_object_get(doc, "schema");
	json_t *version = json_object_get(doc, "version");

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
	} else if (!valid_section(json_object_get(doc, "peak")) ||
		   !valid_section(json_object_get(doc, "current"))) {
		snprintf(err, errlen,
			 "%s: snapshot is damaged (peak/current sections)",
			 name);
	} else {
		return doc;
	}
	json_decref(doc);
	return NULL;
}

json_t *snapfile__load(const char *path, char *err, size_t errlen)
{
	json_error_t je;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);

	if (!doc) {
		snprintf(err, errlen, "%s: not a valid snapshot (line %d: %s)",
			 path, je.line, je.text);
		return NULL;
	}
	return checked(doc, path, err, errlen);
}

json_t *snapfile__load_buffer(const char *buf, size_t len, const char *name,
			      char *err, size_t errlen)
{
	json_error_t je;
	json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);

	if (!doc) {
		snprintf(err, errlen, "%s: not a valid snapshot (line %d: %s)",
			 name, je.line, je.text);
		return NULL;
	}
	return checked(doc, name, err, errlen);
}
