/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Where to put an entry uprobe so the kernel emulates the probed
 * instruction instead of single-stepping it (~0.8 us vs ~11 us a hit here).
 *
 * The rule, for functions whose NULL first argument is a no-op (free):
 * if the body starts with `test %rdi,%rdi; je/jz T`, the instruction after
 * the je is one the kernel emulates (push reg, nop), and no branch in the
 * function lands on the bytes in between or on that instruction, then every
 * call with a non-NULL pointer passes the instruction after the je exactly
 * once, with the same registers. Probing there loses no free and adds none.
 * For other functions, leading register-only instructions (no memory, no
 * branch, no write to an argument register or the stack pointer) may be
 * skipped up to the first emulated one: mmap's mov/test before its jcc.
 * Anything else stays at +0.
 */
#ifndef MEMPROF_PROLOGUE_H
#define MEMPROF_PROLOGUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct probe_site {
	uint64_t skip; /* bytes past the function start */
	bool emulated; /* the probed instruction is emulated by the kernel */
	bool stack_intact; /* sp as at entry: a return probe may sit there */
	const char *why; /* one line, for -v and docs */
};

/* Is the first instruction in code[0..len) one x86 uprobes emulate? */
bool prologue__emulated(const uint8_t *code, size_t len);
/*
 * Decide the entry probe offset for a function whose whole body is
 * code[0..len) at address vaddr. null_noop: arg0 == NULL makes the call a
 * no-op, so a leading NULL check may be skipped.
 */
struct probe_site prologue__decide(const uint8_t *code, size_t len,
				   uint64_t vaddr, bool null_noop);

#endif
