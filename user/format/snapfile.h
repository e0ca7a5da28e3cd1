/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Snapshot files (docs/snapshot-format.md), apart from the live agent:
 * written atomically (lib/atomicfile.c: 0600 temp file, fsync'd, renamed
 * (-o) or linked to a fresh name, never clobbering; handed to the sudo
 * user), read back and validated. The offline commands need only this.
 */
#ifndef MEMPROF_SNAPFILE_H
#define MEMPROF_SNAPFILE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_SCHEMA "memprof-bpf/snapshot"

/* The newest version read: 1 (expanded JSON) and 2 (interned, gzipped). */
#define SNAPSHOT_VERSION 2

/*
 * Write doc to path: a version-2 document compact and gzipped, any other
 * as indented JSON text. replace: rename over an existing file (-o); else
 * the name must be new (-EEXIST otherwise). Returns 0 or -errno.
 */
int snapfile__save(json_t *doc, const char *path, bool replace);

/* The same for a rendered export (folded, HTML); a final newline added. */
int snapfile__save_text(const char *text, size_t len, const char *path,
			bool replace);

/* The same for bytes (pprof, gzip): no newline added. */
int snapfile__save_binary(const void *data, size_t len, const char *path,
			  bool replace);

/*
 * The bytes of doc's file: a version-2 document compact and gzipped, any
 * other as indented JSON text (no final newline). Malloc'd; 0 or -errno.
 */
int snapfile__encode(json_t *doc, char **out, size_t *len);

/* gzip (zlib, level 6) of len bytes into a malloc'd buffer. 0 or -errno. */
int snapfile__gzip(const void *in, size_t len, char **out, size_t *outlen);

/*
 * Read and validate a snapshot, plain or gzipped, version 1 or 2; NULL
 * with a one-line reason in err. Always version 1's shape: a version-2
 * document comes back expanded (format/snapv2.h).
 */
json_t *snapfile__load(const char *path, char *err, size_t errlen);

/* The same from len bytes in memory (no NUL needed); name is for err. */
json_t *snapfile__load_buffer(const char *buf, size_t len, const char *name,
			      char *err, size_t errlen);

/* ISO 8601 UTC with milliseconds. */
void snapfile__iso_time(int64_t real_ns, char *buf, size_t size);

#endif
