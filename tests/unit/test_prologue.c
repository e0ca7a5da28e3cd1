// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include "procs/elfsym.h"
#include "procs/prologue.h"
#include "unit.h"

#define LIBC "/usr/lib/x86_64-linux-gnu/libc.so.6"
#define VADDR 0x98ef0

/* glibc 2.36 free: test %rdi,%rdi; je rel32; push %rbp; lea; push; sub */
static const uint8_t free_like[] = {
	0x48, 0x85, 0xff, /* test %rdi,%rdi */
	0x0f, 0x84, 0xbf, 0x00, 0x00, 0x00, /* je +0xc8 */
	0x55, /* push %rbp  <- +9 */
	0x48, 0x8d, 0x77, 0xf0, /* lea -0x10(%rdi),%rsi */
	0x53, /* push %rbx */
	0x48, 0x83, 0xec, 0x18, /* sub $0x18,%rsp */
	0xc3, /* ret */
};

static struct probe_site decide(const uint8_t *code, size_t len, bool noop)
{
	struct probe_site s = prologue__decide(code, len, VADDR, noop);

	cr_assert_not_null(s.why);
	return s;
}

Test(prologue, free_like_skips_the_null_check, .timeout = 10)
{
	struct probe_site s = decide(free_like, sizeof(free_like), true);

	cr_assert_eq(s.skip, 9);
	cr_assert(s.emulated);
}

/* glibc 2.43 free: the NULL check, then an alignment check before work. */
Test(prologue, free_243_skips_the_alignment_test, .timeout = 10)
{
	static const uint8_t code[] = {
		0x48, 0x85, 0xff, /* test %rdi,%rdi */
		0x0f, 0x84, 0xe7, 0x00, 0x00, 0x00, /* je +0xf0 */
		0x40, 0xf6, 0xc7, 0x0f, /* test $0xf,%dil: single-stepped */
		0x0f, 0x85, 0xcd, 0x00, 0x00, 0x00, /* jne  <- +13, emulated */
		0x4c, 0x8b, 0x47, 0xf8, /* mov -0x8(%rdi),%r8 */
		0x4d, 0x89, 0xc2, /* mov %r8,%r10 */
		0xc3, /* ret */
	};
	struct probe_site s = decide(code, sizeof(code), true);

	cr_assert_eq(s.skip, 13, "%s", s.why);
	cr_assert(s.emulated);
}

Test(prologue, without_null_noop_stops_at_the_branch, .timeout = 10)
{
	struct probe_site s = decide(free_like, sizeof(free_like), false);

	/* Every call passes the je (NULL or not): it may hold the probe. */
	cr_assert_eq(s.skip, 3);
	cr_assert(s.emulated);
	cr_assert(s.stack_intact);
}

Test(prologue, register_only_prefix, .timeout = 10)
{
	/* glibc 2.36 mmap: mov %ecx,%r10d; test $0xfff,%r9d; jne; ... */
	static const uint8_t mmap_like[] = {
		0x41, 0x89, 0xca, /* mov %ecx,%r10d */
		0x41, 0xf7, 0xc1, 0xff, 0x0f, 0x00, 0x00, /* test $0xfff,%r9d */
		0x75, 0x14, /* jne +0x14  <- +10 */
		0xb8, 0x09, 0x00, 0x00, 0x00, /* mov $9,%eax */
		0x0f, 0x05, /* syscall */
		0xc3, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
		0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0xc3,
	};
	/* mov %rdi,%rsi writes an argument: the probe must see it unwritten. */
	static const uint8_t writes_arg[] = {
		0x48, 0x89, 0xfe, 0x75, 0x02, 0x90, 0x90, 0xc3, 0x90, 0xc3,
	};
	/* mov (%rdi),%rax reads memory. */
	static const uint8_t reads_mem[] = {
		0x48, 0x8b, 0x07, 0x75, 0x02, 0x90, 0x90, 0xc3, 0x90, 0xc3,
	};
	/* mov $0xb,%eax; syscall: never moved past. */
	static const uint8_t munmap_like[] = {
		0xb8, 0x0b, 0x00, 0x00, 0x00, 0x0f,
		0x05, 0x73, 0x01, 0xc3, 0xc3,
	};
	struct probe_site s;

	s = decide(mmap_like, sizeof(mmap_like), false);
	cr_assert_eq(s.skip, 10);
	cr_assert(s.emulated && s.stack_intact);
	s = decide(writes_arg, sizeof(writes_arg), false);
	cr_assert_eq(s.skip, 0);
	s = decide(reads_mem, sizeof(reads_mem), false);
	cr_assert_eq(s.skip, 0);
	s = decide(munmap_like, sizeof(munmap_like), false);
	cr_assert_eq(s.skip, 0);
	cr_assert_not(s.emulated);
}

Test(prologue, je_rel8, .timeout = 10)
{
	static const uint8_t code[] = {
		0x48, 0x85, 0xff, /* test %rdi,%rdi */
		0x74, 0x08, /* je +0xd */
		0x55, /* push %rbp  <- +5 */
		0x48, 0x89, 0xe5, /* mov %rsp,%rbp */
		0x5d, /* pop %rbp */
		0xc3, /* ret */
		0x90, 0x90, /* nop; nop */
		0xc3, /* ret  <- the NULL path */
	};
	struct probe_site s = decide(code, sizeof(code), true);

	cr_assert_eq(s.skip, 5);
	cr_assert(s.emulated);
}

Test(prologue, push_r12_after_check, .timeout = 10)
{
	static const uint8_t code[] = {
		0x48, 0x85, 0xff, /* test %rdi,%rdi */
		0x74, 0x05, /* je +0xa */
		0x41, 0x54, /* push %r12  <- +5 */
		0x41, 0x5c, /* pop %r12 */
		0xc3, /* ret */
		0xc3, /* ret */
	};
	struct probe_site s = decide(code, sizeof(code), true);

	cr_assert_eq(s.skip, 5);
	cr_assert(s.emulated);
}

Test(prologue, branch_to_the_landing_insn_keeps_entry, .timeout = 10)
{
	/* A loop back to the push would run the probe twice per call. */
	static const uint8_t code[] = {
		0x48, 0x85, 0xff, /* test %rdi,%rdi */
		0x0f, 0x84, 0x20, 0x00, 0x00, 0x00, /* je +0x29 */
		0x55, /* push %rbp  <- +9 */
		0x48, 0x89, 0xe5, /* mov %rsp,%rbp */
		0x5d, /* pop %rbp */
		0xeb, 0xf9, /* jmp +9 */
		0xc3, /* ret */
	};
	struct probe_site s = decide(code, sizeof(code), true);

	cr_assert_eq(s.skip, 0);
	cr_assert_not(s.emulated);
}

Test(prologue, branch_into_the_check_keeps_entry, .timeout = 10)
{
	/* A jump to the je (+3) skips the test: also not safe. */
	static const uint8_t code[] = {
		0x48, 0x85, 0xff, /* test %rdi,%rdi */
		0x74, 0x08, /* je +0xd */
		0x55, /* push %rbp */
		0x5d, /* pop %rbp */
		0x75, 0xf9, /* jne +2 (inside the test) */
		0xeb, 0xf8, /* jmp +3 (the je) */
		0xc3, /* ret */
		0x90, /* nop */
		0xc3, /* ret */
	};
	struct probe_site s = decide(code, sizeof(code), true);

	cr_assert_eq(s.skip, 0);
}

Test(prologue, branch_to_the_start_is_fine, .timeout = 10)
{
	/* Back to the test itself: every path still passes the check. */
	static const uint8_t code[] = {
		0x48, 0x85, 0xff, /* test %rdi,%rdi */
		0x74, 0x06, /* je +0xb */
		0x55, /* push %rbp */
		0x5d, /* pop %rbp */
		0x31, 0xff, /* xor %edi,%edi */
		0xeb, 0xf5, /* jmp +0 */
		0xc3, /* ret */
	};
	struct probe_site s = decide(code, sizeof(code), true);

	cr_assert_eq(s.skip, 5);
	cr_assert(s.emulated);
}

Test(prologue, landing_insn_not_emulated_keeps_entry, .timeout = 10)
{
	static const uint8_t code[] = {
		0x48, 0x85, 0xff, /* test %rdi,%rdi */
		0x74, 0x05, /* je +0xa */
		0x48, 0x89, 0xe5, /* mov %rsp,%rbp  <- not emulated */
		0x5d, /* pop %rbp */
		0xc3, /* ret */
		0xc3, /* ret */
	};
	struct probe_site s = decide(code, sizeof(code), true);

	cr_assert_eq(s.skip, 0);
	cr_assert_not(s.emulated);
}

Test(prologue, other_first_insns_keep_entry, .timeout = 10)
{
	static const uint8_t jne[] = {
		0x48, 0x85, 0xff, 0x75, 0x04, 0x55, 0x5d, 0xc3, 0x90, 0xc3,
	};
	static const uint8_t rsi[] = {
		0x48, 0x85, 0xf6, 0x74, 0x04, 0x55, 0x5d, 0xc3, 0x90, 0xc3,
	};
	static const uint8_t push[] = {
		0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3, 0x90, 0x90, 0x90, 0x90,
	};
	struct probe_site s;

	s = decide(jne, sizeof(jne), true);
	cr_assert_eq(s.skip, 0, "jne is not a NULL early-out");
	s = decide(rsi, sizeof(rsi), true);
	cr_assert_eq(s.skip, 0, "test %%rsi is not arg0");
	s = decide(push, sizeof(push), true);
	cr_assert_eq(s.skip, 0);
	cr_assert(s.emulated, "push %%rbp at +0 is emulated");
	/* Too short to hold the pattern. */
	s = decide(free_like, 7, true);
	cr_assert_eq(s.skip, 0);
}

Test(prologue, emulated_instructions, .timeout = 10)
{
	static const uint8_t push_rbp[] = { 0x55 };
	static const uint8_t push_r12[] = { 0x41, 0x54 };
	static const uint8_t push_r15[] = { 0x41, 0x57 };
	static const uint8_t nop[] = { 0x90 };
	static const uint8_t nop2[] = { 0x66, 0x90 };
	static const uint8_t nopl[] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
	static const uint8_t call[] = { 0xe8, 0x00, 0x00, 0x00, 0x00 };
	static const uint8_t jmp8[] = { 0xeb, 0x00 };
	static const uint8_t jz32[] = { 0x0f, 0x84, 0, 0, 0, 0 };
	static const uint8_t cmpb[] = {
		0x80, 0x3d, 0x11, 0x22, 0x33, 0x00, 0x00
	};
	static const uint8_t mov[] = { 0x48, 0x89, 0xe5 };
	static const uint8_t test[] = { 0x48, 0x85, 0xff };
	static const uint8_t rex_only[] = { 0x41 };

	cr_assert(prologue__emulated(push_rbp, sizeof(push_rbp)));
	cr_assert(prologue__emulated(push_r12, sizeof(push_r12)));
	cr_assert(prologue__emulated(push_r15, sizeof(push_r15)));
	cr_assert(prologue__emulated(nop, sizeof(nop)));
	cr_assert(prologue__emulated(nop2, sizeof(nop2)));
	cr_assert(prologue__emulated(nopl, sizeof(nopl)));
	cr_assert(prologue__emulated(call, sizeof(call)));
	cr_assert(prologue__emulated(jmp8, sizeof(jmp8)));
	cr_assert(prologue__emulated(jz32, sizeof(jz32)));
	cr_assert_not(prologue__emulated(cmpb, sizeof(cmpb)));
	cr_assert_not(prologue__emulated(mov, sizeof(mov)));
	cr_assert_not(prologue__emulated(test, sizeof(test)));
	cr_assert_not(prologue__emulated(rex_only, sizeof(rex_only)));
	cr_assert_not(prologue__emulated(push_rbp, 0));
}

/* The body of libc's name, as attach reads it (at most 512 bytes). */
static size_t libc_body(struct elfsym *e, const char *name, uint8_t *code,
			uint64_t *vaddr)
{
	const struct elf_func *f = elfsym__by_name(e, name);
	size_t len;

	cr_assert_not_null(f, "%s not in " LIBC, name);
	len = f->size && f->size < 512 ? f->size : 512;
	cr_assert_eq(elfsym__read(e, f->vaddr, code, len), 0);
	*vaddr = f->vaddr;
	return len;
}

Test(prologue, this_machines_libc, .timeout = 10)
{
	struct elfsym *e = elfsym__open(LIBC);
	struct probe_site s;
	uint8_t code[512];
	uint64_t vaddr;
	size_t len;

	cr_assert_not_null(e);
	/* free: test %rdi,%rdi; je; push %rbp at +9 (objdump). */
	len = libc_body(e, "free", code, &vaddr);
	cr_assert_eq(memcmp(code, free_like, 10), 0, "free's first bytes");
	s = prologue__decide(code, len, vaddr, true);
	cr_assert_eq(s.skip, 9, "free: %s", s.why);
	cr_assert(s.emulated);
	/* malloc: push %r12 at +0. */
	len = libc_body(e, "malloc", code, &vaddr);
	cr_assert_eq(code[0], 0x41);
	cr_assert_eq(code[1], 0x54);
	s = prologue__decide(code, len, vaddr, false);
	cr_assert_eq(s.skip, 0);
	cr_assert(s.emulated);
	s = prologue__decide(code, len, vaddr, true);
	cr_assert_eq(s.skip, 0);
	cr_assert(s.emulated);
	/* mmap: mov %ecx,%r10d; test $0xfff,%r9d; jne at +10 (objdump). */
	len = libc_body(e, "mmap", code, &vaddr);
	s = prologue__decide(code, len, vaddr, false);
	cr_assert_eq(s.skip, 10, "mmap: %s", s.why);
	cr_assert(s.emulated && s.stack_intact);
	elfsym__close(e);
}
