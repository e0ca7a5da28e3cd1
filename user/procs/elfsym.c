// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "elfsym.h"

static int cmp_func(const void *a, const void *b)
{
	const struct elf_func *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/* Append a name to the string pool; returns its offset. */
static size_t pool_add(struct elfsym *e, const char *s, size_t *cap)
{
	size_t n = strlen(s) + 1, off = e->strings_len;

	if (e->strings_len + n > *cap) {
		size_t c = (*cap ? *cap * 2 : 4096) + n;
		char *p = realloc(e->strings, c);

		if (!p)
			return (size_t)-1;
		e->strings = p;
		*cap = c;
	}
	memcpy(e->strings + off, s, n);
	e->strings_len += n;
	return off;
}

/*
 * Collect STT_FUNC symbols of one symbol table section. versym: the
 * dynsym's version indices (SHT_GNU_versym), or NULL.
 */
static int load_symtab(struct elfsym *e, Elf *elf, Elf_Scn *scn, GElf_Shdr *sh,
		       Elf_Data *versym, size_t *pool_cap, size_t *cap)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t i, n = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;

	for (i = 0; data && i < n; i++) {
		GElf_Versym ver;
		GElf_Sym sym;
		const char *name;
		size_t off;

		/*
		 * Imports are not definitions, even when a non-PIE executable
		 * gives them a value (the canonical PLT address of malloc).
		 */
		if (!gelf_getsym(data, i, &sym) ||
		    GELF_ST_TYPE(sym.st_info) != STT_FUNC || !sym.st_value ||
		    sym.st_shndx == SHN_UNDEF)
			continue;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!name || !*name)
			continue;
		if (e->nfuncs == *cap) {
			size_t c = *cap ? *cap * 2 : 1024;
			struct elf_func *f = realloc(e->funcs, c * sizeof(*f));

			if (!f)
				return -ENOMEM;
			e->funcs = f;
			*cap = c;
		}
		off = pool_add(e, name, pool_cap);
		if (off == (size_t)-1)
			return -ENOMEM;
		e->funcs[e->nfuncs].vaddr = sym.st_value;
		e->funcs[e->nfuncs].size = sym.st_size;
		e->funcs[e->nfuncs].name = (const char *)off; /* fixed later */
		/* 0x8000 (VERSYM_HIDDEN): name@VER, not the default name@@VER */
		e->funcs[e->nfuncs].hidden = versym &&
					     gelf_getversym(versym, i, &ver) &&
					     (ver & 0x8000);
		e->nfuncs++;
	}
	return 0;
}

/* symtab when present (unstripped test programs), else dynsym. */
static int load_funcs(struct elfsym *e, Elf *elf)
{
	size_t pool_cap = 0, cap = 0, i;
	Elf_Scn *scn = NULL, *dyn = NULL, *tab = NULL, *ver = NULL;
	GElf_Shdr sh;
	int err;

	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB)
			tab = scn;
		else if (sh.sh_type == SHT_DYNSYM)
			dyn = scn;
		else if (sh.sh_type == SHT_GNU_versym)
			ver = scn;
	}
	if (dyn) {
		gelf_getshdr(dyn, &sh);
		if ((err = load_symtab(e, elf, dyn, &sh,
				       ver ? elf_getdata(ver, NULL) : NULL,
				       &pool_cap, &cap)))
			return err;
	}
	if (tab) {
		gelf_getshdr(tab, &sh);
		if ((err = load_symtab(e, elf, tab, &sh, NULL, &pool_cap,
				       &cap)))
			return err;
	}
	for (i = 0; i < e->nfuncs; i++)
		e->funcs[i].name = e->strings + (size_t)e->funcs[i].name;
	qsort(e->funcs, e->nfuncs, sizeof(*e->funcs), cmp_func);
	return 0;
}

static void load_segments(struct elfsym *e, Elf *elf)
{
	size_t i, n;
	GElf_Phdr ph;

	if (elf_getphdrnum(elf, &n))
		return;
	for (i = 0; i < n && e->nloads < 16; i++) {
		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		e->loads[e->nloads].vaddr = ph.p_vaddr;
		e->loads[e->nloads].offset = ph.p_offset;
		e->loads[e->nloads].filesz = ph.p_filesz;
		e->nloads++;
	}
}

struct elfsym *elfsym__open(const char *path)
{
	struct elfsym *e = calloc(1, sizeof(*e));
	Elf *elf = NULL;
	int fd = -1;

	if (!e || elf_version(EV_CURRENT) == EV_NONE)
		goto fail;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF)
		goto fail;
	e->path = strdup(path);
	if (!e->path || load_funcs(e, elf))
		goto fail;
	load_segments(e, elf);
	elf_end(elf);
	close(fd);
	return e;
fail:
	if (elf)
		elf_end(elf);
	if (fd >= 0)
		close(fd);
	elfsym__close(e);
	return NULL;
}

void elfsym__close(struct elfsym *e)
{
	if (!e)
		return;
	free(e->path);
	free(e->funcs);
	free(e->strings);
	free(e);
}

/* Exact match, or a versioned dynsym name "malloc@@GLIBC_2.2.5". */
static bool name_is(const char *sym, const char *name)
{
	size_t n = strlen(name);

	return strncmp(sym, name, n) == 0 && (sym[n] == '\0' || sym[n] == '@');
}

const struct elf_func *elfsym__by_name(const struct elfsym *e, const char *name)
{
	const struct elf_func *other = NULL;
	size_t i, n = strlen(name);

	for (i = 0; i < e->nfuncs; i++) {
		const char *s = e->funcs[i].name;

		if (!name_is(s, name))
			continue;
		/* The default version: name or name@@VER, not hidden. */
		if (!e->funcs[i].hidden && (s[n] == '\0' || s[n + 1] == '@'))
			return &e->funcs[i];
		if (!other)
			other = &e->funcs[i];
	}
	return other;
}

const struct elf_func *elfsym__by_addr(const struct elfsym *e, uint64_t vaddr)
{
	size_t lo = 0, hi = e->nfuncs;
	const struct elf_func *f;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e->funcs[mid].vaddr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	f = &e->funcs[lo - 1];
	/* Zero-size symbols (asm stubs) own addresses up to the next one. */
	if (f->size && vaddr >= f->vaddr + f->size)
		return NULL;
	return f;
}

int64_t elfsym__vaddr_to_off(const struct elfsym *e, uint64_t vaddr)
{
	size_t i;

	for (i = 0; i < e->nloads; i++) {
		const struct elf_load *l = &e->loads[i];

		if (vaddr >= l->vaddr && vaddr < l->vaddr + l->filesz)
			return vaddr - l->vaddr + l->offset;
	}
	return -1;
}

int64_t elfsym__off_to_vaddr(const struct elfsym *e, uint64_t off)
{
	size_t i;

	for (i = 0; i < e->nloads; i++) {
		const struct elf_load *l = &e->loads[i];

		if (off >= l->offset && off < l->offset + l->filesz)
			return off - l->offset + l->vaddr;
	}
	return -1;
}

int elfsym__read(const struct elfsym *e, uint64_t vaddr, void *buf, size_t size)
{
	int64_t off = elfsym__vaddr_to_off(e, vaddr);
	ssize_t n;
	int fd;

	if (off < 0)
		return -ERANGE;
	fd = open(e->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, buf, size, off);
	close(fd);
	return n == (ssize_t)size ? 0 : -EIO;
}

/* Search one symbol table section for a defined object named name. */
static int find_object(Elf *elf, Elf_Scn *scn, const char *name,
		       uint64_t *vaddr, uint64_t *size)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	GElf_Shdr sh;
	size_t i, n;

	if (!data || !gelf_getshdr(scn, &sh) || !sh.sh_entsize)
		return -ENOENT;
	n = sh.sh_size / sh.sh_entsize;
	for (i = 0; i < n; i++) {
		GElf_Sym sym;
		const char *s;

		if (!gelf_getsym(data, i, &sym) || sym.st_shndx == SHN_UNDEF ||
		    GELF_ST_TYPE(sym.st_info) != STT_OBJECT)
			continue;
		s = elf_strptr(elf, sh.sh_link, sym.st_name);
		if (s && name_is(s, name)) {
			*vaddr = sym.st_value;
			*size = sym.st_size;
			return 0;
		}
	}
	return -ENOENT;
}

int elfsym__object(const char *path, const char *name, uint64_t *vaddr,
		   uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = -ENOENT;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	Elf *elf;

	if (fd < 0)
		return -errno;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	while (elf && err && (scn = elf_nextscn(elf, scn)))
		if (gelf_getshdr(scn, &sh) &&
		    (sh.sh_type == SHT_DYNSYM || sh.sh_type == SHT_SYMTAB))
			err = find_object(elf, scn, name, vaddr, size);
	if (elf)
		elf_end(elf);
	close(fd);
	return err;
}
