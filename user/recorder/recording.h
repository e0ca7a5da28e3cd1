/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The agent's half of the in-process recorder (--probes recorder, issue
 * 17, being built): a ring for the command it starts, handed to it with
 * LD_PRELOAD=libmemprof-recorder.so and MEMPROF_RECORDER_FD; its records
 * read at every drain into the same handler as the BPF ring's. A process
 * of the command's tree that maps the library and the ring is traced
 * without allocator uprobes (attach.c asks recording__in); one that does
 * not (a static or setuid program) gets the uprobes, as ever.
 */
#ifndef MEMPROF_RECORDING_H
#define MEMPROF_RECORDING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct agent;

/* What a tracee's allocator is said to be, when the recorder reports. */
#define RECORDER_ALLOC "the in-process recorder"

/*
 * Rings can be adopted from now on; with a command that records, make its
 * ring. 0 or exit code.
 */
int recording__start(struct agent *a);
void recording__stop(struct agent *a);
/* Around the command's launch: its environment and the ring's fd. */
void recording__before_launch(struct agent *a);
void recording__after_launch(struct agent *a);
/*
 * Does t record itself: the library among its files, a ring mapped? The
 * command's tree writes to the agent's ring; a kernel started with the
 * kernelspec (memprof-bpf kernelspec) to its own, adopted here: read from
 * now on (t->recorder_late: what it holds from before needs a census).
 * Sets t->ring. 1: it records; 0: it does not (uprobes); -EAGAIN: it
 * maps the library but no ring yet (between ld.so's mapping and its
 * constructor; a library preloaded without a ring never gets one: the
 * caller stops waiting).
 */
struct tracee;
int recording__in(struct agent *a, struct tracee *t, char **files, int n);
/*
 * Hand every committed record to events__handle, in order. A record of
 * a process not known yet (its fork is still in the BPF ring) waits for
 * the next drain, half a second at most.
 */
void recording__drain(struct agent *a);
/*
 * pid walks its Python stacks in-process with cfg (attach.c builds it as
 * for BPF); code_type is &PyCode_Type there, whose tp_dealloc (at that
 * offset) the recorder hooks. 0 or -errno (-ENOSPC: no free slot, the
 * process gets native sites).
 */
struct py_cfg;
int recording__python(struct agent *a, pid_t pid, const struct py_cfg *cfg,
		      uint64_t code_type, uint32_t tp_dealloc);
/* pid's image is gone (exec, exit): its slot is free again. */
void recording__forget_python(struct agent *a, pid_t pid);
/*
 * Where t keeps its ring's reserved count (BPF reads it when a marker
 * fires: the marker's cut), or 0 when it does not record.
 */
uint64_t recording__cut_address(const struct tracee *t);
/* Handle pid's records reserved before cut, before the marker with it. */
void recording__drain_to(struct agent *a, pid_t pid, uint64_t cut);
/*
 * Everything reserved by now, waiting briefly for records being written:
 * a query's caller recorded its allocations before it asked.
 */
void recording__drain_reserved(struct agent *a);
/* Records the rings had no room for. */
uint64_t recording__dropped(const struct agent *a);
/* The library a command preloads (kernelspec names it too). 0 or -errno. */
int recording__library(char *out, size_t size);

#endif
