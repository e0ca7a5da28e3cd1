/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Snapshot version 2 (docs/snapshot-format.md): version 1's document with
 * every string, frame and stack written once. A frame is in the "frames"
 * table with its strings as indexes into "strings"; a stack is in the
 * "stacks" table as frame indexes, root first; the sections' stacks name
 * theirs by index, and their cells by string index. The file is that
 * document, compact and gzipped (format/snapfile.c).
 *
 * Writers intern as they go (the agent, from its sites); readers expand a
 * v2 document back to version 1's shape, which every reader (report, diff,
 * html, folded, pprof) and `report --format json` take.
 */
#ifndef MEMPROF_SNAPV2_H
#define MEMPROF_SNAPV2_H

#include <jansson.h>
#include <stddef.h>

struct snapv2;

struct snapv2 *snapv2__new(void);
void snapv2__free(struct snapv2 *t);
/* A string's index as a JSON integer; JSON null for NULL. */
json_t *snapv2__string(struct snapv2 *t, const char *s);
/*
 * The index of a version-1 frame (taken: decref'd or kept). key names it
 * uniquely when the caller knows one cheaply; NULL: its JSON text is.
 * -1 when out of memory.
 */
long snapv2__frame(struct snapv2 *t, const char *key, json_t *frame);
/* The index of the frame key names, or -1 if it has none yet. */
long snapv2__find_frame(struct snapv2 *t, const char *key);
/* The index of a stack of frame indexes, root first (taken). -1 on ENOMEM. */
long snapv2__stack(struct snapv2 *t, json_t *indexes);
/* Put the tables into doc and mark it version 2. 0 or -ENOMEM. */
int snapv2__finish(struct snapv2 *t, json_t *doc);

/* A version-1 document as version 2 (a new document; v1 is untouched). */
json_t *snapv2__pack(json_t *v1);
/*
 * A version-2 document in version 1's shape (a new document), every index
 * checked; NULL with a one-line reason in err when one is out of range or
 * a table is malformed.
 */
json_t *snapv2__expand(json_t *v2, char *err, size_t errlen);

#endif
