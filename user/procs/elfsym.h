/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Function symbols of one ELF file (symtab, else dynsym) and its PT_LOAD
 * layout, so the agent can turn a name into a uprobe file offset and a
 * runtime address back into module + function + offset.
 */
#ifndef MEMPROF_ELFSYM_H
#define MEMPROF_ELFSYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_func {
	uint64_t vaddr, size;
	const char *name;
	bool hidden; /* a non-default symbol version (name@VER) */
};

struct elf_load {
	uint64_t vaddr, offset, filesz;
};

struct elfsym {
	char *path;
	struct elf_func *funcs; /* sorted by vaddr */
	size_t nfuncs;
	struct elf_load loads[16];
	size_t nloads;
	char *strings; /* owned copies of the names */
	size_t strings_len;
};

struct elfsym *elfsym__open(const char *path);
void elfsym__close(struct elfsym *e);
/* The function named name (default version for versioned dynsyms). */
const struct elf_func *elfsym__by_name(const struct elfsym *e,
				       const char *name);
/* The function containing vaddr, or NULL. */
const struct elf_func *elfsym__by_addr(const struct elfsym *e, uint64_t vaddr);
/* vaddr <-> file offset through the PT_LOAD segments; -1 when unmapped. */
int64_t elfsym__vaddr_to_off(const struct elfsym *e, uint64_t vaddr);
int64_t elfsym__off_to_vaddr(const struct elfsym *e, uint64_t off);
/* Read size bytes of the file at vaddr (for prologue decoding). */
int elfsym__read(const struct elfsym *e, uint64_t vaddr, void *buf,
		 size_t size);

/*
 * A defined data object (STT_OBJECT/STT_TLS) by name, e.g. _PyRuntime:
 * its link-time address and size. 0, or -ENOENT.
 */
int elfsym__object(const char *path, const char *name, uint64_t *vaddr,
		   uint64_t *size);

#endif
