// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <capstone/capstone.h>
#include <string.h>
#include "prologue.h"

/*
 * Instructions arch/x86/kernel/uprobes.c emulates rather than
 * single-steps: push of a register (50+r, REX.B 41 50+r), nop (90, 0f 1f),
 * and relative jmp/call/jcc. Everything else is stepped out of line.
 */
bool prologue__emulated(const uint8_t *c, size_t len)
{
	if (len >= 1 && (c[0] >= 0x50 && c[0] <= 0x57))
		return true;
	if (len >= 2 && c[0] == 0x41 && c[1] >= 0x50 && c[1] <= 0x57)
		return true;
	if (len >= 1 && (c[0] == 0x90 || c[0] == 0xe8 || c[0] == 0xe9 ||
			 c[0] == 0xeb || (c[0] >= 0x70 && c[0] <= 0x7f)))
		return true;
	if (len >= 2 && c[0] == 0x66 && c[1] == 0x90)
		return true;
	if (len >= 2 && c[0] == 0x0f && (c[1] == 0x1f || (c[1] & 0xf0) == 0x80))
		return true;
	return false;
}

static bool is_test_rdi_rdi(const cs_insn *i)
{
	const cs_x86 *x = &i->detail->x86;

	return i->id == X86_INS_TEST && x->op_count == 2 &&
	       x->operands[0].type == X86_OP_REG &&
	       x->operands[0].reg == X86_REG_RDI &&
	       x->operands[1].type == X86_OP_REG &&
	       x->operands[1].reg == X86_REG_RDI;
}

/* Does any branch in insn[0..n) land inside (lo, hi]? */
static bool branch_into(csh cs, const cs_insn *insn, size_t n, uint64_t lo,
			uint64_t hi)
{
	size_t k;

	for (k = 0; k < n; k++) {
		const cs_x86 *x = &insn[k].detail->x86;

		if (!cs_insn_group(cs, &insn[k], CS_GRP_JUMP) &&
		    !cs_insn_group(cs, &insn[k], CS_GRP_CALL))
			continue;
		if (x->op_count == 1 && x->operands[0].type == X86_OP_IMM &&
		    (uint64_t)x->operands[0].imm > lo &&
		    (uint64_t)x->operands[0].imm <= hi)
			return true;
	}
	return false;
}

static struct probe_site at_start(const uint8_t *code, size_t len,
				  const char *why)
{
	struct probe_site s = { .emulated = prologue__emulated(code, len),
				.why = why };

	return s;
}

/* Registers the probes read at entry: the six arguments and the stack. */
static const x86_reg entry_regs[] = {
	X86_REG_RDI, X86_REG_EDI, X86_REG_DI,  X86_REG_DIL, X86_REG_RSI,
	X86_REG_ESI, X86_REG_SI,  X86_REG_SIL, X86_REG_RDX, X86_REG_EDX,
	X86_REG_DX,  X86_REG_DL,  X86_REG_DH,  X86_REG_RCX, X86_REG_ECX,
	X86_REG_CX,  X86_REG_CL,  X86_REG_CH,  X86_REG_R8,  X86_REG_R8D,
	X86_REG_R8W, X86_REG_R8B, X86_REG_R9,  X86_REG_R9D, X86_REG_R9W,
	X86_REG_R9B, X86_REG_RSP, X86_REG_ESP, X86_REG_SP,  X86_REG_SPL,
	X86_REG_RIP,
};

static bool is_entry_reg(uint16_t r)
{
	size_t i;

	for (i = 0; i < sizeof(entry_regs) / sizeof(entry_regs[0]); i++)
		if (entry_regs[i] == r)
			return true;
	return false;
}

/*
 * Can the probe move past this instruction? Only if running it first
 * changes nothing the probes look at: no memory operand, no branch, call,
 * syscall or interrupt, and no write to an argument register or the stack
 * pointer (flags and scratch registers are fine: mov %ecx,%r10d; test).
 */
static bool register_only(csh cs, const cs_insn *i)
{
	cs_regs rd, wr;
	uint8_t nrd, nwr, k;
	const cs_x86 *x = &i->detail->x86;

	if (cs_insn_group(cs, i, CS_GRP_JUMP) ||
	    cs_insn_group(cs, i, CS_GRP_CALL) ||
	    cs_insn_group(cs, i, CS_GRP_RET) ||
	    cs_insn_group(cs, i, CS_GRP_INT) ||
	    cs_insn_group(cs, i, CS_GRP_IRET) ||
	    cs_insn_group(cs, i, CS_GRP_PRIVILEGE) || i->id == X86_INS_SYSCALL)
		return false;
	for (k = 0; k < x->op_count; k++)
		if (x->operands[k].type == X86_OP_MEM)
			return false;
	if (cs_regs_access(cs, i, rd, &nrd, wr, &nwr) != CS_ERR_OK)
		return false;
	for (k = 0; k < nwr; k++)
		if (is_entry_reg(wr[k]))
			return false;
	return true;
}

/*
 * mmap-like bodies start with register shuffles the kernel must
 * single-step (mov %ecx,%r10d; test $0xfff,%r9d) before an emulated jcc.
 * Land on the first emulated instruction within a few register-only ones,
 * if no branch lands in between: every call then passes it exactly once,
 * with the arguments and the stack pointer as they were at entry (so the
 * return probe can sit there too).
 */
static struct probe_site past_register_ops(csh cs, const cs_insn *insn,
					   size_t n, const uint8_t *code,
					   size_t len, uint64_t vaddr)
{
	struct probe_site s = at_start(code, len, "entry");
	uint64_t land;
	size_t k;

	if (s.emulated)
		return s;
	for (k = 0; k < n && k < 4 && register_only(cs, &insn[k]); k++)
		;
	if (k == 0 || k >= n)
		return s;
	land = insn[k].address;
	if (!prologue__emulated(code + (land - vaddr), len - (land - vaddr)) ||
	    branch_into(cs, insn, n, vaddr, land))
		return s;
	s.skip = land - vaddr;
	s.emulated = true;
	s.stack_intact = true;
	s.why = "after register-only instructions";
	return s;
}

struct probe_site prologue__decide(const uint8_t *code, size_t len,
				   uint64_t vaddr, bool null_noop)
{
	struct probe_site s;
	cs_insn *insn = NULL;
	uint64_t land;
	size_t n, k;
	csh cs;

	if (len < 8)
		return at_start(code, len, "entry");
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return at_start(code, len, "entry (no disassembler)");
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(cs, code, len, vaddr, 0, &insn);
	if (!null_noop) {
		s = past_register_ops(cs, insn, n, code, len, vaddr);
		goto out;
	}
	s = at_start(code, len, "entry (no leading NULL check)");
	if (n < 3 || !is_test_rdi_rdi(&insn[0]) || insn[1].id != X86_INS_JE)
		goto out;
	/*
	 * glibc 2.43's free checks alignment next (test $0xf,%dil; jne): past
	 * a few register-only instructions, the first emulated one.
	 */
	for (k = 2; k < n && k < 5 && register_only(cs, &insn[k]) &&
		    !prologue__emulated(code + (insn[k].address - vaddr),
					len - (insn[k].address - vaddr));
	     k++)
		;
	if (k >= n)
		goto out;
	land = insn[k].address;
	if (!prologue__emulated(code + (land - vaddr), len - (land - vaddr))) {
		s.why = "entry (instruction after NULL check is not emulated)";
		goto out;
	}
	/* The je's own target is the NULL path; nothing else may land here. */
	if (branch_into(cs, insn, n, vaddr, land)) {
		s.why = "entry (a branch lands inside the NULL check)";
		goto out;
	}
	s.skip = land - vaddr;
	s.emulated = true;
	s.why = k == 2 ? "after NULL check (test rdi,rdi; je)"
		       : "after NULL check and register-only instructions";
out:
	if (insn)
		cs_free(insn, n);
	cs_close(&cs);
	return s;
}
