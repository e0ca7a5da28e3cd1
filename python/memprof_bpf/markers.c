// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Cell markers for memprof-bpf: two USDT probes the IPython extension fires
 * around each notebook cell, so the agent knows which cell allocates.
 *
 *   memprof:cell__start(int64 execution_count, const char *code_filename,
 *                       const char *source_head)
 *   memprof:cell__end(int64 execution_count, const char *code_filename,
 *                     const char *source_head, int32 success)
 *
 * The probes are guarded by semaphores: a tracer attaching with libbpf
 * passes their offsets as uprobe reference counters, and the kernel raises
 * them while it is attached. Untraced, a marker costs one load and a branch.
 */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

#define EXPORT __attribute__((visibility("default")))

/*
 * sdt.h names these provider_probe_semaphore and records their addresses in
 * the .note.stapsdt notes; .probes is where tracers expect them. Volatile:
 * the kernel writes them behind the compiler's back.
 */
#define SEMAPHORE                          \
	__attribute__((section(".probes"), \
		       visibility("hidden"))) volatile unsigned short

SEMAPHORE memprof_cell__start_semaphore;
SEMAPHORE memprof_cell__end_semaphore;

/* A cell is about to run. */
EXPORT void memprof_cell_start(long long n, const char *file, const char *head)
{
	if (memprof_cell__start_semaphore)
		STAP_PROBE3(memprof, cell__start, n, file, head);
}

/* A cell has finished; ok is 0 if it raised. */
EXPORT void memprof_cell_end(long long n, const char *file, const char *head,
			     int ok)
{
	if (memprof_cell__end_semaphore)
		STAP_PROBE4(memprof, cell__end, n, file, head, ok);
}

/* 1 while a tracer has either probe attached, else 0. */
EXPORT int memprof_traced(void)
{
	return memprof_cell__start_semaphore || memprof_cell__end_semaphore;
}
