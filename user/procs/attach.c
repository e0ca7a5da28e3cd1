// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "recorder/recording.h"
#include "lib/text.h"
#include "attach.h"
#include "elfsym.h"
#include "lib/log.h"
#include "memprof.h"
#include "memprof.skel.h"
#include "procs.h"
#include "prologue.h"
#include "pyruntime.h"
#include "reaper.h"
#include "symbolize.h"

struct fn_spec {
	const char *name;
	enum alloc_fn fn;
	bool null_noop; /* f(NULL) is a no-op: a NULL check may be skipped */
	bool syscall; /* mmap family: always from libc */
};

static const struct fn_spec fns[] = {
	{ "malloc", FN_MALLOC, false, false },
	{ "calloc", FN_CALLOC, false, false },
	{ "realloc", FN_REALLOC, false, false },
	{ "reallocarray", FN_REALLOCARRAY, false, false },
	{ "free", FN_FREE, true, false },
	{ "posix_memalign", FN_POSIX_MEMALIGN, false, false },
	{ "aligned_alloc", FN_ALIGNED_ALLOC, false, false },
	{ "memalign", FN_MEMALIGN, false, false },
	{ "valloc", FN_VALLOC, false, false },
	{ "pvalloc", FN_PVALLOC, false, false },
	{ "mmap", FN_MMAP, false, true },
	{ "munmap", FN_MUNMAP, false, true },
	{ "mremap", FN_MREMAP, false, true },
};

#define NFNS (sizeof(fns) / sizeof(fns[0]))

/* Entry and return programs of each function (return may be NULL). */
static void progs_for(struct memprof_bpf *s, enum alloc_fn fn,
		      struct bpf_program **enter, struct bpf_program **ret)
{
	struct bpf_program *alloc_ret = s->progs.alloc_return;

	*ret = NULL;
	switch (fn) {
	case FN_MALLOC:
		*enter = s->progs.malloc_enter, *ret = alloc_ret;
		break;
	case FN_CALLOC:
		*enter = s->progs.calloc_enter, *ret = alloc_ret;
		break;
	case FN_REALLOC:
		*enter = s->progs.realloc_enter, *ret = s->progs.realloc_return;
		break;
	case FN_REALLOCARRAY:
		*enter = s->progs.reallocarray_enter;
		*ret = s->progs.realloc_return;
		break;
	case FN_FREE:
		*enter = s->progs.free_enter;
		break;
	case FN_POSIX_MEMALIGN:
		*enter = s->progs.posix_memalign_enter;
		*ret = s->progs.posix_memalign_return;
		break;
	case FN_ALIGNED_ALLOC:
	case FN_MEMALIGN:
		*enter = s->progs.memalign_enter, *ret = alloc_ret;
		break;
	case FN_VALLOC:
		*enter = s->progs.valloc_enter, *ret = alloc_ret;
		break;
	case FN_PVALLOC:
		*enter = s->progs.pvalloc_enter, *ret = alloc_ret;
		break;
	case FN_MMAP:
		*enter = s->progs.mmap_enter, *ret = s->progs.mmap_return;
		break;
	case FN_MUNMAP:
		*enter = s->progs.munmap_enter;
		break;
	case FN_MREMAP:
		*enter = s->progs.mremap_enter, *ret = s->progs.mremap_return;
		break;
	default:
		*enter = NULL;
	}
}

/* ---- per-file probe plans, computed once per path --------------------- */

struct plan {
	char path[PATH_MAX];
	bool have[FN_MAX];
	uint64_t off[FN_MAX]; /* file offset of the function */
	uint64_t skip[FN_MAX]; /* entry probe distance past it */
	uint64_t ret_skip[FN_MAX]; /* return probe's (sp still as at entry) */
	struct plan *next;
};

static struct plan *plans;

static void plan_fn(struct plan *p, const struct elfsym *e,
		    const struct fn_spec *spec)
{
	const struct elf_func *f = elfsym__by_name(e, spec->name);
	uint8_t code[512];
	struct probe_site site;
	size_t len;
	int64_t off;

	if (!f || (off = elfsym__vaddr_to_off(e, f->vaddr)) < 0)
		return;
	p->have[spec->fn] = true;
	p->off[spec->fn] = off;
	len = f->size && f->size < sizeof(code) ? f->size : sizeof(code);
	if (elfsym__read(e, f->vaddr, code, len))
		return;
	site = prologue__decide(code, len, f->vaddr, spec->null_noop);
	p->skip[spec->fn] = site.skip;
	p->ret_skip[spec->fn] = site.stack_intact ? site.skip : 0;
	log_info("%s: %s at +%llu: %s%s", p->path, spec->name,
		 (unsigned long long)site.skip, site.why,
		 site.emulated ? "" : " (single-stepped)");
}

/*
 * The plan for a file covers every function it defines, whatever the
 * caller needs now: plans are cached by path and shared between processes
 * (the allocator of one can be the syscall wrappers' file of another).
 */
static struct plan *plan_for(const char *path)
{
	struct plan *p;
	struct elfsym *e;
	size_t i;

	for (p = plans; p; p = p->next)
		if (strcmp(p->path, path) == 0)
			return p;
	e = elfsym__open(path);
	p = calloc(1, sizeof(*p));
	if (!e || !p) {
		elfsym__close(e);
		free(p);
		return NULL;
	}
	snprintf(p->path, sizeof(p->path), "%s", path);
	for (i = 0; i < NFNS; i++)
		plan_fn(p, e, &fns[i]);
	elfsym__close(e);
	p->next = plans;
	plans = p;
	return p;
}

/* ---- choosing files --------------------------------------------------- */

bool attach__is_libc(const char *path)
{
	const char *base = text__base_name(path);

	return strncmp(base, "libc.so", 7) == 0 ||
	       strncmp(base, "libc-", 5) == 0;
}

/* From the cached plan: each mapped file's symbols are read once. */
static bool defines_malloc(const char *path)
{
	struct plan *p = plan_for(path);

	return p && p->have[FN_MALLOC] && p->have[FN_FREE];
}

/*
 * The dynamic linker binds malloc to the first definition in search order:
 * the executable, then preloaded/needed libraries, libc last.
 */
const char *attach__pick_allocator(char *const *paths, int n, const char *exe)
{
	int i;

	if (exe && defines_malloc(exe))
		return exe;
	for (i = 0; i < n; i++)
		if (!attach__is_libc(paths[i]) &&
		    strcmp(paths[i], exe ? exe : "") &&
		    defines_malloc(paths[i]))
			return paths[i];
	for (i = 0; i < n; i++)
		if (attach__is_libc(paths[i]) && defines_malloc(paths[i]))
			return paths[i];
	return NULL;
}

/* Unique executable file mappings of the process, from its symbolizer. */
static int mapped_files(struct tracee *t, char **out, int max)
{
	int n = 0, j;
	size_t i;

	if (symbolizer__refresh(&t->sym))
		return -ESRCH;
	for (i = 0; i < t->sym.nmaps && n < max; i++) {
		for (j = 0; j < n; j++)
			if (strcmp(out[j], t->sym.maps[i].path) == 0)
				break;
		if (j == n)
			out[n++] = t->sym.maps[i].path;
	}
	return n;
}

/* ---- attaching -------------------------------------------------------- */

/*
 * Keep a one-line reason for the user. EINVAL here has one usual cause:
 * the kernel keeps one uprobe per address, and refuses a second consumer
 * whose USDT reference counter offset differs. Debian 12's bcc (0.26)
 * passes a stray one for plain uprobes (its Python binding omits the
 * argument), so a bcc tool on the same function holds it until it exits.
 */
static int explain(struct tracee *t, const struct plan *p, enum alloc_fn fn,
		   int err)
{
	snprintf(t->attach_error, sizeof(t->attach_error),
		 "uprobe at %s+0x%llx rejected: %s%s", p->path,
		 (unsigned long long)(p->off[fn] + p->skip[fn]), strerror(-err),
		 err == -EINVAL ? " (another tracer holds a probe there with a "
				  "different reference counter: bcc's memleak "
				  "or trace do)"
				: "");
	return err;
}

/*
 * An entry probe at off and, when the function has one, its return probe
 * at ret_off: the allocator and pymalloc attach their pairs alike.
 */
static int attach_pair(struct tracee *t, const char *path,
		       struct bpf_program *enter, uint64_t off,
		       struct bpf_program *ret, uint64_t ret_off)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts);
	struct bpf_link *l;

	if (t->nlinks + 2 > TRACEE_MAX_LINKS)
		return -E2BIG;
	l = bpf_program__attach_uprobe_opts(enter, t->pid, path, off, &opts);
	if (!l)
		return -errno;
	t->links[t->nlinks++] = l;
	if (!ret)
		return 0;
	opts.retprobe = true;
	l = bpf_program__attach_uprobe_opts(ret, t->pid, path, ret_off, &opts);
	if (!l)
		return -errno;
	t->links[t->nlinks++] = l;
	return 0;
}

static int attach_one(struct agent *a, struct tracee *t, struct plan *p,
		      enum alloc_fn fn, bool *seen_off)
{
	struct bpf_program *enter, *ret;
	int err;

	progs_for(a->skel, fn, &enter, &ret);
	if (!enter || fn >= FN_MAX || !p->have[fn] || *seen_off)
		return 0; /* aliases (aligned_alloc = memalign) probe once */
	*seen_off = true;
	err = attach_pair(t, p->path, enter, p->off[fn] + p->skip[fn], ret,
			  p->off[fn] + p->ret_skip[fn]);
	return err && err != -E2BIG ? explain(t, p, fn, err) : err;
}

static int attach_plan(struct agent *a, struct tracee *t, struct plan *p,
		       bool syscalls)
{
	size_t i, j;
	int err;

	for (i = 0; i < NFNS; i++) {
		bool dup = false;

		if (fns[i].syscall != syscalls)
			continue;
		for (j = 0; j < i; j++)
			if (p->have[fns[j].fn] && p->have[fns[i].fn] &&
			    p->off[fns[j].fn] == p->off[fns[i].fn])
				dup = true;
		err = attach_one(a, t, p, fns[i].fn, &dup);
		if (err)
			return err;
	}
	return 0;
}

/*
 * A probe on ld.so's _dl_debug_state (see dso_change in the probes):
 * optional, a process without it only names new libraries a little later.
 */
static void watch_dlopen(struct agent *a, struct tracee *t, char **files,
			 int nf)
{
	const struct elf_func *f;
	struct elfsym *e = NULL;
	struct bpf_link *l;
	int64_t off = -1;
	int i;

	for (i = 0; i < nf && !e; i++)
		if (strstr(files[i], "/ld-linux"))
			e = elfsym__open(files[i]);
	if (!e || t->nlinks >= TRACEE_MAX_LINKS) {
		elfsym__close(e);
		return;
	}
	f = elfsym__by_name(e, "_dl_debug_state");
	if (f)
		off = elfsym__vaddr_to_off(e, f->vaddr);
	l = off >= 0 ? bpf_program__attach_uprobe(a->skel->progs.dso_change,
						  false, t->pid, e->path, off)
		     : NULL;
	if (l)
		t->links[t->nlinks++] = l;
	else
		log_debug("pid %d: no dlopen watch in %s", t->pid, e->path);
	elfsym__close(e);
}

/*
 * A process that maps the recorder but no ring yet is between ld.so's
 * mapping and the library's constructor: wait this many ticks for the
 * ring rather than probe an allocator it will record itself.
 */
#define RING_WAIT_TRIES 10

int attach__tracee(struct agent *a, struct tracee *t)
{
	char exe[PATH_MAX], path[PATH_MAX], *files[256] = { 0 };
	struct stat st;
	const char *alloc, *libc = NULL;
	struct plan *pa, *pl;
	ssize_t n;
	int nf, i, err, rin;
	char link[64];

	snprintf(link, sizeof(link), "/proc/%d/exe", t->pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	if (n < 0 || stat(link, &st))
		return -errno == -ENOENT ? -ESRCH : -errno;
	exe[n] = '\0';
	/* Named as its mappings are (another root's: procs__file_path). */
	procs__file_path(t->pid, exe, st.st_dev, st.st_ino, path, sizeof(path));
	snprintf(exe, sizeof(exe), "%s", path);
	nf = mapped_files(t, files, 256);
	if (nf < 0)
		return nf;
	/* Its own records come from the recorder: no allocator probes. */
	rin = recording__in(a, t, files, nf);
	if (rin == -EAGAIN && t->attach_tries < RING_WAIT_TRIES)
		return -EAGAIN; /* loaded, its constructor not run yet */
	if (rin > 0) {
		if (t->recorder && t->nlinks)
			return 0; /* an exec that kept it: as it was */
		t->replanned = false; /* it records from its first call */
		attach__detach(t);
		t->recorder = true;
		snprintf(t->alloc_lib, sizeof(t->alloc_lib), "%s",
			 RECORDER_ALLOC);
		watch_dlopen(a, t, files, nf);
		return 0;
	}
	t->recorder = false;
	alloc = attach__pick_allocator(files, nf, exe);
	if (!alloc)
		return -EAGAIN; /* ld.so has not mapped libc yet */
	/* After exec into a program using the same allocator, keep probes. */
	if (t->nlinks && strcmp(alloc, t->alloc_lib) == 0)
		return 0;
	/* An exec into another allocator: the new image ran unprobed. */
	t->replanned = t->nlinks > 0;
	attach__detach(t);
	for (i = 0; i < nf; i++)
		if (attach__is_libc(files[i]))
			libc = files[i];
	pa = plan_for(alloc);
	if (!pa)
		return -ENOEXEC;
	pl = plan_for(libc && !pa->have[FN_MMAP] ? libc : alloc);
	if (!pl)
		return -ENOEXEC;
	snprintf(t->alloc_lib, sizeof(t->alloc_lib), "%s", alloc);
	err = attach_plan(a, t, pa, false);
	if (!err)
		err = attach_plan(a, t, pl, true);
	if (err)
		attach__detach(t);
	else
		watch_dlopen(a, t, files, nf);
	return err;
}

void attach__detach(struct tracee *t)
{
	reaper__put(t->links, t->nlinks);
	t->nlinks = 0;
}

int attach__mark(struct agent *a, pid_t pid)
{
	struct proc_cfg zero = {};
	__u32 key = pid;

	return bpf_map__update_elem(a->skel->maps.traced_pids, &key,
				    sizeof(key), &zero, sizeof(zero), BPF_ANY);
}

void attach__unmark(struct agent *a, pid_t pid)
{
	__u32 key = pid;

	bpf_map__delete_elem(a->skel->maps.traced_pids, &key, sizeof(key), 0);
}

/* ---- Python ------------------------------------------------------------- */

static void fill_cfg(struct py_cfg *c, const struct py_runtime *rt, int depth)
{
	const struct py_layout *l = rt->layout;
	static __u64 gen;

	memset(c, 0, sizeof(*c));
	c->runtime = rt->runtime;
	c->gen = ++gen * 0x100000001b3ULL;
	c->tss_key = l->tss_key;
	c->tls_off = l->tls_off;
	c->exec_mask = l->exec_mask;
	c->ts_datastack = l->ts_datastack;
	c->ts_frame = l->ts_frame;
	c->ts_cframe = l->ts_cframe;
	c->cframe_current = l->cframe_current;
	c->fr_back = l->fr_back;
	c->fr_code = l->fr_code;
	c->fr_instr = l->fr_instr;
	c->fr_owner = l->fr_owner;
	c->co_filename = l->co_filename;
	/* qualname (3.11+) says Class.method; name where there is none. */
	c->co_name = l->co_qualname != 0xffff ? l->co_qualname : l->co_name;
	c->co_firstlineno = l->co_firstlineno;
	c->code_start = l->co_code_start;
	c->ascii_data = l->ascii_data;
	c->str_length = l->str_length;
	c->str_hash = l->str_hash;
	c->bytes_size = l->bytes_size;
	c->bytes_data = l->bytes_data;
	c->co_linetable = l->co_linetable;
	c->instr_is_ptr = l->co_code_start != 0xffff;
	/* 3.11+ frames live in the per-thread data stack, callers below. */
	c->win = c->instr_is_ptr;
	c->depth = depth;
}

/*
 * python:gc__start/gc__done where the interpreter was built with them
 * (Debian's python3.11). libbpf raises their semaphores only while our
 * links exist, so untraced interpreters pay nothing.
 */
static struct bpf_link *usdt(struct bpf_program *prog, struct tracee *t,
			     const char *path, const char *name)
{
	return bpf_program__attach_usdt(prog, t->pid, path, "python", name,
					NULL);
}

/*
 * python:gc__* and import__find__load__* where the interpreter was built
 * with them (Debian's python3.11). libbpf raises their semaphores only
 * while our links exist, so untraced interpreters pay nothing.
 */
static void attach_markers(struct agent *a, struct tracee *t, const char *path)
{
	struct memprof_bpf *s = a->skel;
	struct bpf_link *l[4];
	int i;

	if (t->gc.probed || t->nlinks + 4 > TRACEE_MAX_LINKS)
		return;
	l[0] = usdt(s->progs.gc_start, t, path, "gc__start");
	l[1] = l[0] ? usdt(s->progs.gc_done, t, path, "gc__done") : NULL;
	l[2] = l[1] ? usdt(s->progs.import_start, t, path,
			   "import__find__load__start")
		    : NULL;
	l[3] = l[2] ? usdt(s->progs.import_done, t, path,
			   "import__find__load__done")
		    : NULL;
	if (!l[3]) {
		for (i = 0; i < 4; i++)
			bpf_link__destroy(l[i]);
		return; /* no USDT in this build: fine */
	}
	for (i = 0; i < 4; i++)
		t->links[t->nlinks++] = l[i];
	t->gc.probed = true;
}

/* CPython's object allocator: the symbol, its programs, its fn. */
struct pymalloc_fn {
	const char *sym;
	enum alloc_fn fn;
};

static const struct pymalloc_fn pymalloc_fns[] = {
	{ "_PyObject_Malloc", FN_PYMALLOC },
	{ "_PyObject_Calloc", FN_PYCALLOC },
	{ "_PyObject_Realloc", FN_PYREALLOC },
	{ "_PyObject_Free", FN_PYFREE },
};

#define NPYMALLOC (sizeof(pymalloc_fns) / sizeof(pymalloc_fns[0]))

static void pymalloc_progs(struct memprof_bpf *s, enum alloc_fn fn,
			   struct bpf_program **enter, struct bpf_program **ret)
{
	switch (fn) {
	case FN_PYMALLOC:
		*enter = s->progs.pymalloc_malloc_enter;
		*ret = s->progs.alloc_return;
		break;
	case FN_PYCALLOC:
		*enter = s->progs.pymalloc_calloc_enter;
		*ret = s->progs.alloc_return;
		break;
	case FN_PYREALLOC:
		*enter = s->progs.pymalloc_realloc_enter;
		*ret = s->progs.realloc_return;
		break;
	default:
		*enter = s->progs.pymalloc_free_enter;
		*ret = NULL;
	}
}

/* File offsets of the four functions at link addresses vaddr (0: none). */
static int file_offsets(const struct elfsym *e, const uint64_t vaddr[NPYMALLOC],
			uint64_t off[NPYMALLOC])
{
	size_t i;

	for (i = 0; i < NPYMALLOC; i++) {
		int64_t o = vaddr[i] ? elfsym__vaddr_to_off(e, vaddr[i]) : -1;

		if (o < 0)
			return -ENOENT;
		off[i] = o;
	}
	return 0;
}

/*
 * File offsets of _PyObject_Malloc & co., or -ENOENT. They are static
 * functions reached through the allocator table, so only .symtab names
 * them: builds that strip it (Debian's python3.11, which also inlines the
 * allocator into its ~190 callers under LTO) cannot be probed this way.
 */
static int pymalloc_offsets(const char *path, uint64_t off[NPYMALLOC])
{
	struct elfsym *e = elfsym__open(path);
	uint64_t vaddr[NPYMALLOC];
	size_t i;
	int err;

	if (!e)
		return -errno;
	for (i = 0; i < NPYMALLOC; i++) {
		const struct elf_func *f =
			elfsym__by_name(e, pymalloc_fns[i].sym);

		vaddr[i] = f ? f->vaddr : 0;
	}
	err = file_offsets(e, vaddr, off);
	elfsym__close(e);
	return err;
}

/*
 * How many times the code of the segment holding fn spells fn's address
 * as a 32-bit immediate. GCC's speculative devirtualization turns
 * CPython's calls through the allocator table into `cmp $fn, %reg; je
 * <inlined copy of fn>`: Debian's 3.14 compares _PyObject_Malloc at 262
 * places and calls it at 24, so a probe on it misses most objects. Non-PIE
 * only (a PIE compares a rip-relative lea, which this does not see).
 */
static size_t guards_of(const struct elfsym *e, uint64_t fn)
{
	uint32_t want = fn, w;
	size_t i, n = 0;
	uint8_t *buf;

	if (fn >> 32)
		return 0;
	for (i = 0; i < e->nloads; i++)
		if (fn >= e->loads[i].vaddr &&
		    fn < e->loads[i].vaddr + e->loads[i].filesz)
			break;
	if (i == e->nloads || e->loads[i].filesz > (256u << 20) ||
	    !(buf = malloc(e->loads[i].filesz)))
		return 0;
	if (!elfsym__read(e, e->loads[i].vaddr, buf, e->loads[i].filesz))
		for (w = 0; w + 4 <= e->loads[i].filesz; w++)
			n += memcmp(buf + w, &want, 4) == 0;
	free(buf);
	return n;
}

#define GUARDS_MAX 16 /* a few are allocator-name checks, not inlining */

/*
 * 3.14+ stripped builds (Debian's): the object allocator's functions from
 * the table CPython calls them through, _PyRuntime.allocators.standard.obj
 * {ctx, malloc, calloc, realloc, free}, read in the process. Only
 * pymalloc's own are taken: a NULL context and every function inside this
 * file (PYTHONMALLOC=malloc or debug puts libc's or hooks there). -EXDEV
 * when the build inlines them behind guards (guards_of).
 */
static int pymalloc_from_table(pid_t pid, const struct py_runtime *rt,
			       uint64_t off[NPYMALLOC])
{
	uint64_t tab[1 + NPYMALLOC];
	struct elfsym *e;
	size_t i;
	int err;

	if (!rt->layout->alloc_obj ||
	    procs__read_mem(pid, rt->runtime + rt->layout->alloc_obj, tab,
			    sizeof(tab)) ||
	    tab[0] != 0)
		return -ENOENT;
	e = elfsym__open(rt->path);
	if (!e)
		return -ENOENT;
	for (i = 1; i <= NPYMALLOC; i++)
		tab[i] -= rt->bias; /* link addresses */
	err = file_offsets(e, tab + 1, off);
	if (!err && guards_of(e, tab[1]) > GUARDS_MAX)
		err = -EXDEV;
	elfsym__close(e);
	return err;
}

/*
 * --pymalloc: entry/return probes on the object allocator, so every small
 * object is one allocation of its requested size instead of a share of a
 * pymalloc arena (whose mmap is then nested, hence not counted twice).
 */
static int attach_pymalloc(struct agent *a, struct tracee *t,
			   const struct py_runtime *rt)
{
	struct bpf_program *enter, *ret;
	uint64_t off[NPYMALLOC];
	size_t i;
	int err = pymalloc_offsets(rt->path, off);

	if (err)
		err = pymalloc_from_table(t->pid, rt, off);
	if (err) {
		log_warn("--pymalloc: %s %s: pid %d's small objects are "
			 "counted by pymalloc arena; run it with "
			 "PYTHONMALLOC=malloc to count them one by one",
			 rt->path,
			 err == -EXDEV ? "inlines CPython's object allocator "
					 "into its callers"
				       : "has no symbols for CPython's object "
					 "allocator (stripped build)",
			 t->pid);
		return err;
	}
	if (t->nlinks + 2 * NPYMALLOC > TRACEE_MAX_LINKS)
		return -E2BIG;
	for (i = 0; i < NPYMALLOC; i++) {
		pymalloc_progs(a->skel, pymalloc_fns[i].fn, &enter, &ret);
		err = attach_pair(t, rt->path, enter, off[i], ret, off[i]);
		if (err)
			return err;
	}
	log_info("pid %d: pymalloc probed in %s", t->pid, rt->path);
	return 0;
}

/*
 * File offset of code_dealloc, from PyCode_Type.tp_dealloc in the live
 * process (relocated by then even at the program's entry point). Found
 * this way it needs no .symtab, so stripped builds have it too.
 */
/* PyCode_Type's address in the process, or 0. */
static uint64_t code_type_addr(const struct py_runtime *rt)
{
	uint64_t type, size;

	if (elfsym__object(rt->path, "PyCode_Type", &type, &size) ||
	    size < rt->layout->tp_dealloc + 8u)
		return 0;
	return rt->bias + type;
}

static int64_t code_dealloc_offset(pid_t pid, const struct py_runtime *rt)
{
	uint64_t type = code_type_addr(rt), fn = 0;
	struct elfsym *e;
	int64_t off;

	if (!type || procs__read_mem(pid, type + rt->layout->tp_dealloc, &fn,
				     sizeof(fn)))
		return -ENOENT;
	e = fn ? elfsym__open(rt->path) : NULL;
	if (!e)
		return -ENOENT;
	off = elfsym__vaddr_to_off(e, fn - rt->bias);
	elfsym__close(e);
	return off < 0 ? -ENOENT : off;
}

/*
 * Probe code_dealloc so BPF may cache frame chains (see stack_sigs in
 * bpf/pystack.bpf.h); without it every allocation reads its code objects.
 */
static bool attach_code_dealloc(struct agent *a, struct tracee *t,
				const struct py_runtime *rt)
{
	int64_t off = code_dealloc_offset(t->pid, rt);
	struct bpf_link *l;

	if (off < 0 || t->nlinks + 1 > TRACEE_MAX_LINKS)
		return false;
	l = bpf_program__attach_uprobe(a->skel->progs.code_dealloc_enter, false,
				       t->pid, rt->path, off);
	if (!l) {
		log_debug("pid %d: code_dealloc probe: %s", t->pid,
			  strerror(errno));
		return false;
	}
	t->links[t->nlinks++] = l;
	return true;
}

/*
 * Its markers (gc, import, cells) come through BPF, its allocations
 * through its ring: BPF notes where the ring stood at each marker.
 */
static int mark_cuts(struct agent *a, const struct tracee *t)
{
	__u64 at = recording__cut_address(t);
	__u32 key = t->pid;

	if (!at)
		return -ENOENT;
	return bpf_map__update_elem(a->skel->maps.recorder_cuts, &key,
				    sizeof(key), &at, sizeof(at), BPF_ANY);
}

int attach__python(struct agent *a, struct tracee *t)
{
	struct py_runtime rt;
	struct py_cfg cfg;
	__u32 key = t->pid;
	int err = pyruntime__detect(t->pid, &rt);

	if (err == -ENOTSUP) {
		log_warn("pid %d runs CPython %d.%d (%s): %s; native sites "
			 "only",
			 t->pid, rt.major, rt.minor, rt.path, rt.why);
		return err;
	}
	if (err)
		return err;
	t->py_first = t->nlinks; /* what follows goes with this image */
	fill_cfg(&cfg, &rt, a->env.py_depth);
	if (t->recorder) /* it walks its own stacks, with this layout */
		err = recording__python(a, t->pid, &cfg, code_type_addr(&rt),
					rt.layout->tp_dealloc)
			      ?: mark_cuts(a, t);
	else
		err = bpf_map__update_elem(a->skel->maps.py_procs, &key,
					   sizeof(key), &cfg, sizeof(cfg),
					   BPF_ANY);
	if (err)
		return err;
	if (!t->recorder && attach_code_dealloc(a, t, &rt)) {
		cfg.sig_cache = 1;
		bpf_map__update_elem(a->skel->maps.py_procs, &key, sizeof(key),
				     &cfg, sizeof(cfg), BPF_ANY);
	}
	t->python = true;
	t->pylay = rt.lay;
	t->pylayout = &t->pylay;
	attach_markers(a, t, rt.path);
	if (a->env.pymalloc)
		attach_pymalloc(a, t, &rt);
	t->py.minor = rt.minor;
	log_info("pid %d: CPython %d.%d, _PyRuntime at 0x%llx in %s", t->pid,
		 rt.major, rt.minor, (unsigned long long)rt.runtime, rt.path);
	return 0;
}

#define MARKERS_LIB "/_memprof_markers.so"

/*
 * The python/ package's marker library, if this process has loaded it:
 * looked up in the mappings of the process's symbolizer, read afresh (all
 * of them: a data-science kernel can map more files than mapped_files
 * lists).
 */
static bool find_markers(struct tracee *t, char *path, size_t size)
{
	size_t k = strlen(MARKERS_LIB), n, i;

	if (symbolizer__refresh(&t->sym))
		return false;
	for (i = 0; i < t->sym.nmaps; i++) {
		n = strlen(t->sym.maps[i].path);
		if (n >= k &&
		    strcmp(t->sym.maps[i].path + n - k, MARKERS_LIB) == 0) {
			snprintf(path, size, "%s", t->sym.maps[i].path);
			return true;
		}
	}
	return false;
}

/*
 * memprof:cell__start/__end of the IPython extension (python/), attached
 * as soon as a traced kernel has loaded its library: called every poll,
 * cheap (one read of /proc/PID/maps) until found.
 */
int attach__cell_markers(struct agent *a, struct tracee *t)
{
	struct bpf_link *l[2];
	char path[4096];

	if (t->cell_markers || !t->python || t->nlinks + 2 > TRACEE_MAX_LINKS ||
	    !find_markers(t, path, sizeof(path)))
		return 0;
	/*
	 * End first: a cell whose start is recorded must get its end, even
	 * if it starts and finishes between the two attachments.
	 */
	l[0] = bpf_program__attach_usdt(a->skel->progs.cell_end, t->pid, path,
					"memprof", "cell__end", NULL);
	l[1] = l[0] ? bpf_program__attach_usdt(a->skel->progs.cell_start,
					       t->pid, path, "memprof",
					       "cell__start", NULL)
		    : NULL;
	if (!l[1]) {
		int err = -errno;

		bpf_link__destroy(l[0]);
		t->cell_markers = true; /* don't retry a broken library */
		log_warn("pid %d: cell markers in %s: %s", t->pid, path,
			 strerror(-err));
		return err;
	}
	t->links[t->nlinks++] = l[0];
	t->links[t->nlinks++] = l[1];
	t->cell_markers = true;
	log_info("pid %d: notebook cell markers attached (%s)", t->pid, path);
	return 0;
}

/*
 * The interpreter is gone (exec, exit): its probes too. An exec into the
 * same Python keeps the allocator's links but must not keep these, or
 * each exec would add code_dealloc and USDT links again (and count gc
 * events twice) until the table is full.
 */
void attach__forget_python(struct agent *a, struct tracee *t)
{
	__u32 key = t->pid;

	if (t->python && t->py_first <= t->nlinks) {
		reaper__put(t->links + t->py_first, t->nlinks - t->py_first);
		t->nlinks = t->py_first;
	}
	bpf_map__delete_elem(a->skel->maps.py_procs, &key, sizeof(key), 0);
	recording__forget_python(a, t->pid);
	bpf_map__delete_elem(a->skel->maps.recorder_cuts, &key, sizeof(key), 0);
	t->python = false;
	t->cell_markers = false;
}
