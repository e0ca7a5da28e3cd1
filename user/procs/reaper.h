/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Probe links are destroyed on a background thread: each uprobe
 * unregistration waits for an RCU grace period (~83 ms a link here, ~2 s
 * for a process's 22 links one after another), and doing that in the
 * ring-buffer callback stalled the consumer until the ring overflowed.
 * A batch is destroyed by up to 16 threads at once: the kernel still
 * takes them one at a time, but their waits partly overlap (55 ms a link
 * instead of 83 ms, measured with strace on a kernel's 26 links).
 */
#ifndef MEMPROF_REAPER_H
#define MEMPROF_REAPER_H

struct bpf_link;

/* Start the thread; without it, reaper__put destroys inline. */
int reaper__start(void);
/* Hand over n links (the array is copied, the links are owned). */
void reaper__put(struct bpf_link **links, int n);
/* Destroy everything queued, then stop the thread. */
void reaper__stop(void);

#endif
