/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The Python stack of the allocating thread, read in-process by the
 * recorder (part of libmemprof-recorder.so, never of the agent): what
 * bpf/pystack.bpf.h does in BPF, with the same records (REC_PYCODE,
 * REC_PYSTACK, REC_CODE_FREE) and the same ids, so the agent's model
 * cannot tell the two apart.
 *
 * The walker's offsets are the agent's: it writes the py_cfg it builds
 * for BPF into the ring's header (struct shmring_proc). Until it has,
 * or in a process that is not Python, a stack costs one load and is 0.
 */
#ifndef MEMPROF_PYWALK_H
#define MEMPROF_PYWALK_H

#include <stdint.h>
#include "recorder/shmring.h"

/*
 * Stack id of the calling thread's Python stack: 0 when the process is
 * not configured (or the walk cannot run here: a signal handler that
 * interrupted a walk), PY_STACK_NATIVE_THREAD for a thread without
 * Python frames. New code objects and stacks are written to the ring
 * first, so they precede the allocation record that names them.
 */
uint64_t pywalk__stack(struct shmring *ring, uint32_t pid, uint32_t tid);
/* A forked child: its own pid, its own slot (the tables stay valid). */
void pywalk__after_fork(void);

#endif
