/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The agent's one clock: CLOCK_MONOTONIC in nanoseconds. */
#ifndef MEMPROF_CLOCK_H
#define MEMPROF_CLOCK_H

#include <stdint.h>
#include <time.h>

/*
 * Monotonic, so intervals and timeouts survive a change of the wall
 * clock; BPF's bpf_ktime_get_ns() counts on the same clock.
 */
static inline uint64_t now_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

#endif
