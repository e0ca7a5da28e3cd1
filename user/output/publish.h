/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Per-process state for the notebook's %memprof magic (python/): every
 * report interval, /run/memprof-bpf/<pid>.json holds the kernel's per-cell
 * figures, readable only by the kernel's own user (0600, chowned to it);
 * /run/memprof-bpf/agent.pid says an agent is running. The directory is
 * root's (0755), so nobody else can plant files or links in it.
 */
#ifndef MEMPROF_PUBLISH_H
#define MEMPROF_PUBLISH_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

struct agent;
struct tracee;

#define PUBLISH_DIR "/run/memprof-bpf"

/* Create the directory and agent.pid; false (one warning) if unsafe. */
int publish__start(struct agent *a, const char *dir);
/* One process's per-cell state document (caller decrefs), or NULL. */
json_t *publish__state(const struct agent *a, struct tracee *t);
/* Write the state of every traced Python process. */
void publish__tick(struct agent *a);
/* The process is no longer traced: its file goes. */
void publish__forget(struct agent *a, pid_t pid);
/* Remove agent.pid (if still ours) and every file written. */
void publish__stop(struct agent *a);

#endif
