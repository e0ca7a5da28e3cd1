/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The agent's snapshot files in the format asked for (--format): the JSON
 * document itself, folded stacks for flamegraph.pl/inferno/speedscope,
 * the self-contained HTML page, or pprof's gzipped profile.proto. All are written the same safe way
 * (snapfile__save_text: O_EXCL temp file, fsync, rename or link).
 */
#ifndef MEMPROF_EXPORT_H
#define MEMPROF_EXPORT_H

#include <jansson.h>
#include <stdbool.h>
#include "options.h"

/* File name suffix of a format: ".json.gz", ".json", ".folded", ".html",
 * ".pb.gz". */
const char *export__suffix(enum snap_format f);
/*
 * Save doc (the agent's, version 2) in f to path: as it is for the
 * compact snapshot, else expanded to version 1's shape and rendered.
 * Returns 0 or -errno.
 */
int export__save(json_t *doc, enum snap_format f, const char *path,
		 bool replace);

#endif
