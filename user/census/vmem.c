// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include "vmem.h"

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
/* Pages of pagemap one cache fill covers at least: 1 GiB of 4 KiB pages. */
#define PM_WINDOW (1ULL << 18)
/* Remote pieces per process_vm_readv (the kernel's UIO_MAXIOV). */
#define READ_IOVS 1024

/* A page the process has: resident, or swapped (reading swaps it in). */
static bool page_present(uint64_t e)
{
	return (e & (PM_PRESENT | PM_SWAPPED)) != 0;
}

/* /proc/PID/... gone means the process is: one errno for the caller. */
static int proc_errno(int e)
{
	return e == ENOENT ? -ESRCH : -e;
}

/* Append one mapping; the array grows by doubling. */
static int push_vma(struct vmem *m, const struct vma *v)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct vma *nv = realloc(m->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		m->v = nv;
		m->cap = cap;
	}
	m->v[m->n++] = *v;
	return 0;
}

/* One maps line ("lo-hi perms offset dev inode path") into v. */
static int parse_line(const char *line, struct vma *v)
{
	unsigned long long lo, hi, off, inode;
	int path_at = 0;
	size_t len;

	memset(v, 0, sizeof(*v));
	if (sscanf(line, "%llx-%llx %4s %llx %*s %llu %n", &lo, &hi, v->perms,
		   &off, &inode, &path_at) < 5 ||
	    !path_at)
		return -EINVAL;
	v->lo = lo;
	v->hi = hi;
	v->offset = off;
	v->inode = inode;
	len = strcspn(line + path_at, "\n");
	v->path = strndup(line + path_at, len);
	return v->path ? 0 : -ENOMEM;
}

/* The whole of /proc/PID/maps, in the kernel's (ascending) order. */
static int read_maps(struct vmem *m)
{
	char fn[64], *line = NULL;
	size_t cap = 0;
	struct vma v;
	FILE *f;
	int err = 0;

	snprintf(fn, sizeof(fn), "/proc/%d/maps", (int)m->pid);
	f = fopen(fn, "re");
	if (!f)
		return proc_errno(errno);
	while (!err && getline(&line, &cap, f) > 0) {
		err = parse_line(line, &v);
		if (!err && (err = push_vma(m, &v)))
			free(v.path);
	}
	free(line);
	fclose(f);
	if (!err && m->n == 0)
		err = -ESRCH; /* a zombie has no mappings */
	return err;
}

int vmem__open(struct vmem *m, pid_t pid)
{
	char fn[64];
	int err;

	memset(m, 0, sizeof(*m));
	m->pid = pid;
	m->pagemap_fd = -1;
	m->page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	err = read_maps(m);
	if (err)
		goto fail;
	snprintf(fn, sizeof(fn), "/proc/%d/pagemap", (int)pid);
	m->pagemap_fd = open(fn, O_RDONLY | O_CLOEXEC);
	if (m->pagemap_fd < 0) {
		err = proc_errno(errno);
		goto fail;
	}
	return 0;
fail:
	vmem__close(m);
	return err;
}

void vmem__close(struct vmem *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	free(m->pm);
	if (m->pagemap_fd >= 0)
		close(m->pagemap_fd);
	memset(m, 0, sizeof(*m));
	m->pagemap_fd = -1;
}

const struct vma *vmem__find(const struct vmem *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->v[mid].hi <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && m->v[lo].lo <= addr ? &m->v[lo] : NULL;
}

/*
 * Pagemap entries of pages [p0, p0 + n) into e. A short read means the
 * process's mm is gone (pagemap reads zero bytes then), hence -ESRCH.
 */
static int read_pagemap(struct vmem *m, uint64_t p0, size_t n, uint64_t *e)
{
	size_t want = n * sizeof(*e), got = 0;

	while (got < want) {
		ssize_t r = pread(m->pagemap_fd, (char *)e + got, want - got,
				  (off_t)(p0 * sizeof(*e) + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return proc_errno(errno);
		if (r == 0)
			return -ESRCH;
		got += (size_t)r;
	}
	return 0;
}

int vmem__present(struct vmem *m, uint64_t lo, uint64_t hi, uint64_t *bits)
{
	uint64_t ps = m->page_size, p0 = lo / ps, np = (hi - lo) / ps, done;
	uint64_t e[4096];
	int err;

	memset(bits, 0, (np + 63) / 64 * sizeof(*bits));
	for (done = 0; done < np;) {
		size_t n = np - done < 4096 ? np - done : 4096, i;

		err = read_pagemap(m, p0 + done, n, e);
		if (err)
			return err;
		for (i = 0; i < n; i++, done++)
			if (page_present(e[i]))
				bits[done / 64] |= 1ULL << (done % 64);
	}
	return 0;
}

void vmem__forget(struct vmem *m)
{
	m->pm_lo = m->pm_hi = 0;
}

/*
 * Make the cache cover pages [p0, p1): a whole heap's worth at once (up to
 * the end of the mapping, or PM_WINDOW pages), so a walk that reads a
 * heap in 1 MiB pieces reads its pagemap once.
 */
static int cache_pages(struct vmem *m, uint64_t p0, uint64_t p1)
{
	const struct vma *v = vmem__find(m, p0 * m->page_size);
	uint64_t end = p0 + PM_WINDOW;
	int err;

	if (p0 >= m->pm_lo && p1 <= m->pm_hi)
		return 0;
	if (v && v->hi / m->page_size < end)
		end = v->hi / m->page_size;
	if (end < p1)
		end = p1;
	if (end - p0 > m->pm_cap) {
		uint64_t *pm = realloc(m->pm, (end - p0) * sizeof(*pm));

		if (!pm)
			return -ENOMEM;
		m->pm = pm;
		m->pm_cap = end - p0;
	}
	m->pm_lo = m->pm_hi = 0;
	err = read_pagemap(m, p0, end - p0, m->pm);
	if (err)
		return err;
	m->pm_lo = p0;
	m->pm_hi = end;
	return 0;
}

/* Is [addr, addr + len) inside mappings the process had at open? */
static bool mapped(const struct vmem *m, uint64_t addr, uint64_t len)
{
	uint64_t end = addr + len;

	while (addr < end) {
		const struct vma *v = vmem__find(m, addr);

		if (!v)
			return false;
		addr = v->hi;
	}
	return true;
}

/* The read side: remote pieces and the local buffer pieces they fill. */
struct reads {
	struct iovec local[READ_IOVS], remote[READ_IOVS];
	int n;
};

/* Move piece i of r on by k bytes (k at most what it has left). */
static void piece_done(struct reads *r, int i, size_t k)
{
	r->remote[i].iov_base = (char *)r->remote[i].iov_base + k;
	r->remote[i].iov_len -= k;
	r->local[i].iov_base = (char *)r->local[i].iov_base + k;
	r->local[i].iov_len -= k;
}

/*
 * Read the queued pieces, all of them: process_vm_readv stops at the
 * first page it cannot read, so go on from there until it fails outright.
 */
static int flush_reads(struct vmem *m, struct reads *r)
{
	int i = 0;

	while (i < r->n) {
		ssize_t got = process_vm_readv(m->pid, r->local + i, r->n - i,
					       r->remote + i, r->n - i, 0);

		m->reads++;
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			return -EFAULT;
		m->read_bytes += (uint64_t)got;
		for (; got > 0 && i < r->n; i++) {
			size_t left = r->remote[i].iov_len;

			if ((size_t)got < left) {
				piece_done(r, i, (size_t)got);
				break;
			}
			got -= (ssize_t)left;
		}
	}
	r->n = 0;
	return 0;
}

/* Queue one present run; a full queue is read first. */
static int queue_read(struct vmem *m, struct reads *r, uint64_t addr, char *dst,
		      size_t len)
{
	int err;

	if (r->n == READ_IOVS && (err = flush_reads(m, r)))
		return err;
	r->remote[r->n] = (struct iovec){ (void *)(uintptr_t)addr, len };
	r->local[r->n] = (struct iovec){ dst, len };
	r->n++;
	return 0;
}

int vmem__read(struct vmem *m, uint64_t addr, void *buf, size_t len)
{
	uint64_t ps = m->page_size, end = addr + len, a = addr;
	struct reads r;
	int err;

	if (len == 0)
		return 0;
	if (!mapped(m, addr, len))
		return -EFAULT;
	err = cache_pages(m, addr / ps, (end + ps - 1) / ps);
	if (err)
		return err;
	r.n = 0;
	while (a < end) {
		bool have = page_present(m->pm[a / ps - m->pm_lo]);
		uint64_t b = (a / ps + 1) * ps;

		/* Extend the run over pages of the same kind. */
		while (b < end &&
		       page_present(m->pm[b / ps - m->pm_lo]) == have)
			b += ps;
		if (b > end)
			b = end;
		if (!have)
			memset((char *)buf + (a - addr), 0, b - a);
		else if ((err = queue_read(m, &r, a, (char *)buf + (a - addr),
					   b - a)))
			return err;
		a = b;
	}
	return flush_reads(m, &r);
}

int vmem__word(struct vmem *m, uint64_t addr, uint64_t *out)
{
	return vmem__read(m, addr, out, sizeof(*out));
}

int vmem__peek(struct vmem *m, uint64_t addr, uint64_t *out)
{
	uint64_t page = addr / m->page_size, e;
	struct iovec local = { out, sizeof(*out) };
	struct iovec remote = { (void *)(uintptr_t)addr, sizeof(*out) };
	ssize_t got;
	int err;

	if ((addr & 7) || !mapped(m, addr, sizeof(*out)))
		return -EFAULT;
	if (page >= m->pm_lo && page < m->pm_hi) {
		e = m->pm[page - m->pm_lo];
	} else {
		err = read_pagemap(m, page, 1, &e);
		if (err)
			return err;
	}
	*out = 0;
	if (!page_present(e))
		return 0;
	do {
		got = process_vm_readv(m->pid, &local, 1, &remote, 1, 0);
	} while (got < 0 && errno == EINTR);
	m->reads++;
	if (got < 0)
		return -errno;
	if (got != sizeof(*out))
		return -EFAULT;
	m->read_bytes += sizeof(*out);
	return 0;
}
