/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `memprof-bpf diff A B`: what grew or shrank at the peak between two
 * snapshots of the same program or notebook. Cells are matched by their
 * first source line (else their label), stacks by their frames (file,
 * function and line of each Python frame, function and module of native
 * ones), so two runs line up even though pids and addresses differ.
 */
#ifndef MEMPROF_DIFF_H
#define MEMPROF_DIFF_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* The subcommand: argv[0] is "diff". Returns the exit code. */
int diff__main(int argc, char **argv);
/* Print the comparison of two loaded snapshots, top rows per table. */
void diff__print(FILE *out, json_t *a, json_t *b, const char *name_a,
		 const char *name_b, int top);
/* The key two runs' stacks are matched by (malloc'd), or NULL. */
char *diff__stack_key(json_t *stack);
/* +1.5 MiB, -512 B, 0 B. */
void diff__fmt_change(long long d, char *buf, size_t size);

#endif
