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
	struct probe_site s = { 0, prologue__emulated(code, len), why };

	return s;
}

struct probe_site prologue__decide(const uint8_t *code, size_t len,
				   uint64_t vaddr, bool null_noop)
{
	struct probe_site s;
	cs_insn *insn = NULL;
	uint64_t land;
	csh cs;
	size_t n;

	if (!null_noop || len < 8)
		return at_start(code, len, "entry");
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return at_start(code, len, "entry (no disassembler)");
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(cs, code, len, vaddr, 0, &insn);
	s = at_start(code, len, "entry (no leading NULL check)");
	if (n < 3 || !is_test_rdi_rdi(&insn[0]) || insn[1].id != X86_INS_JE)
		goto out;
	land = insn[2].address;
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
	s.why = "after NULL check (test rdi,rdi; je)";
out:
	if (insn)
		cs_free(insn, n);
	cs_close(&cs);
	return s;
}
