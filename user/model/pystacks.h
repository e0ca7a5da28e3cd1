/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Python stacks and code objects of one process, as the probes announced
 * them (REC_PYSTACK, REC_PYCODE), and a stack's typed frames: root first,
 * file/function/line of each, names referred to in the code objects.
 */
#ifndef MEMPROF_PYSTACKS_H
#define MEMPROF_PYSTACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/frame.h"
#include "lib/u64map.h"
#include "memprof.h"

struct py_code {
	uint64_t id;
	uint64_t addr; /* the code object's address in the process */
	char *file, *name;
	int firstlineno;
	uint8_t *table; /* line table bytes, NULL when unreadable */
	size_t table_len;
};

struct py_stack {
	uint64_t id;
	uint32_t depth;
	bool truncated;
	uint64_t seen_ns; /* CLOCK_MONOTONIC, first seen; 0: unknown */
	struct py_frame *frames; /* innermost first */
};

struct pystacks {
	struct py_code *codes;
	size_t ncodes, codes_cap;
	struct py_stack *stacks;
	size_t nstacks, stacks_cap;
	struct u64map code_map, stack_map; /* id -> index in codes, stacks */
	int minor; /* 3.8/3.9 count lasti in bytes */
};

void pystacks__init(struct pystacks *ps);
void pystacks__free(struct pystacks *ps);
int pystacks__clone(struct pystacks *dst, const struct pystacks *src);
int pystacks__add_code(struct pystacks *ps, const struct rec_pycode *r);
/* Attach a line table (owned) to a known code object. */
void pystacks__set_table(struct pystacks *ps, uint64_t id, uint8_t *table,
			 size_t len);
int pystacks__add_stack(struct pystacks *ps, const struct rec_pystack *r);
const struct py_code *pystacks__code(const struct pystacks *ps, uint64_t id);
const struct py_stack *pystacks__stack(const struct pystacks *ps, uint64_t id);
/* The line a frame was running (its code's first line when unknown). */
int pystacks__frame_line(const struct pystacks *ps, const struct py_frame *f);
/*
 * The stack's frames, root first, into out[0..max): a marker instead
 * for a native thread or a lost stack, "[truncated]" before a cut one,
 * "[unknown Python frame]" for a code never announced. Returns the count.
 */
size_t pystacks__frames(const struct pystacks *ps, uint64_t stack_id,
			struct site_frame *out, size_t max);

#endif
