// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include "elfsym.h"
#include "procs.h"
#include "symbolize.h"

/* ---- shared ELF cache, keyed by path ---------------------------------- */

static struct elfsym **cache;
static size_t ncache;

static struct elfsym *elf_for(const char *path)
{
	struct elfsym **c, *e;
	size_t i;

	for (i = 0; i < ncache; i++)
		if (strcmp(cache[i]->path, path) == 0)
			return cache[i];
	e = elfsym__open(path);
	if (!e)
		return NULL;
	c = realloc(cache, (ncache + 1) * sizeof(*c));
	if (!c) {
		elfsym__close(e);
		return NULL;
	}
	cache = c;
	cache[ncache++] = e;
	return e;
}

void symbolizer__cache_clear(void)
{
	size_t i;

	for (i = 0; i < ncache; i++)
		elfsym__close(cache[i]);
	free(cache);
	cache = NULL;
	ncache = 0;
}

/* ---- per-process mappings --------------------------------------------- */

void symbolizer__init(struct symbolizer *s, pid_t pid)
{
	memset(s, 0, sizeof(*s));
	s->pid = pid;
}

static void drop_maps(struct symbolizer *s)
{
	size_t i;

	for (i = 0; i < s->nmaps; i++)
		free(s->maps[i].path);
	free(s->maps);
	s->maps = NULL;
	s->nmaps = 0;
}

void symbolizer__free(struct symbolizer *s)
{
	drop_maps(s);
}

int symbolizer__clone(struct symbolizer *dst, const struct symbolizer *src)
{
	size_t i;

	drop_maps(dst);
	dst->maps = calloc(src->nmaps + 1, sizeof(*dst->maps));
	if (!dst->maps)
		return -ENOMEM;
	for (i = 0; i < src->nmaps; i++) {
		dst->maps[i] = src->maps[i];
		dst->maps[i].path = strdup(src->maps[i].path);
		if (!dst->maps[i].path) {
			dst->nmaps = i;
			return -ENOMEM;
		}
	}
	dst->nmaps = src->nmaps;
	return 0;
}

int symbolizer__parse_line(const char *line, struct mapping *m)
{
	unsigned long long start, end, off, ino;
	unsigned int major, minor;
	char perms[8], path[4096];
	char *del;

	path[0] = '\0';
	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %4095[^\n]", &start,
		   &end, perms, &off, &major, &minor, &ino, path) < 7)
		return 0;
	if (perms[2] != 'x' || path[0] != '/')
		return 0; /* only executable file mappings hold call sites */
	del = strstr(path, " (deleted)");
	if (del)
		*del = '\0';
	m->start = start;
	m->end = end;
	m->offset = off;
	m->dev = makedev(major, minor);
	m->ino = ino;
	m->path = strdup(path);
	return m->path ? 1 : 0;
}

/* m's path as the agent can open it, in whatever root the process runs. */
static int openable(pid_t pid, struct mapping *m)
{
	char path[4200];

	if (procs__file_path(pid, m->path, m->dev, m->ino, path,
			     sizeof(path)) ||
	    strcmp(path, m->path) == 0)
		return 0;
	free(m->path);
	m->path = strdup(path);
	return m->path ? 0 : -ENOMEM;
}

/*
 * Re-read the executable mappings. A process that has exited reads as
 * empty: the copy taken while it lived is kept then.
 */
int symbolizer__refresh(struct symbolizer *s)
{
	char fname[64], line[4200];
	struct symbolizer fresh = { .pid = s->pid };
	struct mapping m, *v;
	FILE *f;

	if (s->gone)
		return -ESRCH;
	snprintf(fname, sizeof(fname), "/proc/%d/maps", s->pid);
	f = fopen(fname, "re");
	if (!f) {
		s->gone = errno == ENOENT || errno == ESRCH;
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		if (!symbolizer__parse_line(line, &m) || openable(s->pid, &m))
			continue;
		v = realloc(fresh.maps, (fresh.nmaps + 1) * sizeof(*v));
		if (!v) {
			free(m.path);
			break;
		}
		fresh.maps = v;
		fresh.maps[fresh.nmaps++] = m;
	}
	fclose(f);
	if (!fresh.nmaps) {
		s->gone = true;
		return -ESRCH;
	}
	drop_maps(s);
	s->maps = fresh.maps;
	s->nmaps = fresh.nmaps;
	return 0;
}

static const struct mapping *mapping_of(const struct symbolizer *s,
					uint64_t addr)
{
	size_t i;

	for (i = 0; i < s->nmaps; i++)
		if (addr >= s->maps[i].start && addr < s->maps[i].end)
			return &s->maps[i];
	return NULL;
}

void symbolizer__resolve(struct symbolizer *s, uint64_t addr, struct frame *f)
{
	const struct mapping *m = mapping_of(s, addr);
	const struct elf_func *fn;
	struct elfsym *e;
	int64_t vaddr;

	memset(f, 0, sizeof(*f));
	f->addr = addr;
	if (!m && symbolizer__refresh(s) == 0)
		m = mapping_of(s, addr);
	if (!m)
		return;
	f->module = strdup(m->path);
	f->offset = addr - m->start + m->offset; /* file offset until named */
	e = elf_for(m->path);
	if (!e)
		return;
	/* The return address follows the call: look up addr - 1. */
	vaddr = elfsym__off_to_vaddr(e, addr - 1 - m->start + m->offset);
	if (vaddr < 0)
		return;
	fn = elfsym__by_addr(e, vaddr);
	if (!fn)
		return;
	f->function = strdup(fn->name);
	if (f->function) {
		char *at = strchr(f->function, '@');

		if (at)
			*at = '\0';
	}
	f->offset = vaddr + 1 - fn->vaddr;
}

void frame__free(struct frame *f)
{
	free(f->function);
	free(f->module);
	memset(f, 0, sizeof(*f));
}
