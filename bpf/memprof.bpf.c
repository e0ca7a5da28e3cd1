// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * memprof-bpf probes, one BPF object (build/memprof.skel.h). Each event
 * becomes one typed record in the ring buffer; the agent (user/events.c)
 * does the bookkeeping. Nothing here aggregates: a probe hit must stay
 * cheap. The probes live in one header per pipeline stage:
 *
 *   common.bpf.h     ring buffer, stats, traced_pids, reserve/submit
 *   pystack.bpf.h    the Python stack walk, and code_dealloc
 *   alloc.bpf.h      malloc family, free, mmap family, pymalloc
 *   markers.bpf.h    ld.so's library hook, CPython gc/import, notebook cells
 *   lifecycle.bpf.h  fork, exec, exit, OOM kills
 */
#include "common.bpf.h"
#include "pystack.bpf.h"
#include "alloc.bpf.h"
#include "markers.bpf.h"
#include "lifecycle.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
