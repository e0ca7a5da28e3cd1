/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A snapshot as pprof's profile (profile.pb.gz: gzipped protobuf, the
 * schema in user/format/profile.proto), which go tool pprof, speedscope
 * and Pyroscope open. One sample per distinct stack with four values:
 * inuse_objects, inuse_space (the peak), current_objects, current_space
 * (when written); the stack's cell as a string label "cell".
 */
#ifndef MEMPROF_PPROF_H
#define MEMPROF_PPROF_H

#include <jansson.h>
#include <stdio.h>

/* Write a loaded (v1-shaped) snapshot to out. Returns 0 or -errno. */
int pprof__write(FILE *out, json_t *doc);

#endif
