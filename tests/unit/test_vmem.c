// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "census/vmem.h"
#include "unit.h"

#define AREA (64ULL << 20)
#define PAGE 4096ULL

/* The pages the child touches, each filled with its index's byte. */
static const uint64_t touched[] = { 0, 1, 100, 5000, 5001, 5002, 9999, 16383 };
#define NTOUCHED (sizeof(touched) / sizeof(touched[0]))

struct child {
	pid_t pid;
	int go; /* closing it lets the child exit */
	uint64_t area;
};

/* The child: 64 MiB, a few pages touched, then wait for the parent. */
static void child_main(int up, int down)
{
	char *a = mmap(NULL, AREA, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t addr = (uint64_t)(uintptr_t)a;
	size_t i;
	char c;

	if (a == MAP_FAILED)
		_exit(1);
	madvise(a, AREA, MADV_NOHUGEPAGE); /* one touch, one page */
	for (i = 0; i < NTOUCHED; i++)
		memset(a + touched[i] * PAGE, (int)(i + 1), PAGE);
	if (write(up, &addr, sizeof(addr)) != sizeof(addr))
		_exit(1);
	while (read(down, &c, 1) > 0)
		;
	_exit(0);
}

/* The child up, its report in; it waits until end_child. */
static void start_child(struct child *ch)
{
	ch->pid = unit_child_start(child_main, &ch->area, sizeof(ch->area),
				   &ch->go);
	cr_assert_gt(ch->pid, 0);
}

static void end_child(struct child *ch)
{
	unit_child_end(ch->pid, ch->go);
}

Test(vmem, maps_and_find, .timeout = 10)
{
	struct child ch;
	struct vmem m;
	const struct vma *v;

	start_child(&ch);
	cr_assert_eq(vmem__open(&m, ch.pid), 0);
	v = vmem__find(&m, ch.area + 12345);
	cr_assert_not_null(v);
	cr_assert_leq(v->lo, ch.area);
	cr_assert_geq(v->hi, ch.area + AREA);
	cr_assert_str_eq(v->perms, "rw-p");
	cr_assert_eq(v->inode, 0);
	cr_assert_null(vmem__find(&m, 0));
	for (size_t i = 1; i < m.n; i++)
		cr_assert_geq(m.v[i].lo, m.v[i - 1].hi);
	vmem__close(&m);
	end_child(&ch);
}

Test(vmem, present_is_exactly_the_touched_pages, .timeout = 10)
{
	uint64_t bits[AREA / PAGE / 64];
	struct child ch;
	struct vmem m;
	size_t i, n = 0;

	start_child(&ch);
	cr_assert_eq(vmem__open(&m, ch.pid), 0);
	cr_assert_eq(vmem__present(&m, ch.area, ch.area + AREA, bits), 0);
	for (i = 0; i < AREA / PAGE; i++)
		n += (bits[i / 64] >> (i % 64)) & 1;
	cr_assert_eq(n, NTOUCHED, "%zu pages present, want %zu", n, NTOUCHED);
	for (i = 0; i < NTOUCHED; i++)
		cr_assert((bits[touched[i] / 64] >> (touched[i] % 64)) & 1,
			  "page %llu not present",
			  (unsigned long long)touched[i]);
	vmem__close(&m);
	end_child(&ch);
}

Test(vmem, read_all_faults_nothing_in, .timeout = 10)
{
	unsigned char *buf = malloc(AREA);
	struct child ch;
	struct vmem m;
	long before, after;
	uint64_t p, w;
	size_t i;

	cr_assert_not_null(buf);
	start_child(&ch);
	before = unit_rss_anon(ch.pid);
	cr_assert_eq(vmem__open(&m, ch.pid), 0);
	cr_assert_eq(vmem__read(&m, ch.area, buf, AREA), 0);
	after = unit_rss_anon(ch.pid);
	cr_assert_eq(after, before, "RssAnon %ld kB -> %ld kB", before, after);
	for (p = 0; p < AREA / PAGE; p++) {
		int want = 0;

		for (i = 0; i < NTOUCHED; i++)
			if (touched[i] == p)
				want = (int)(i + 1);
		cr_assert_eq(buf[p * PAGE], want, "page %llu",
			     (unsigned long long)p);
		cr_assert_eq(buf[p * PAGE + PAGE - 1], want);
	}
	/* A read across a present/absent boundary, and one word. */
	cr_assert_eq(vmem__read(&m, ch.area + 2 * PAGE - 8, buf, 16), 0);
	cr_assert_eq(buf[7], 2);
	cr_assert_eq(buf[8], 0);
	cr_assert_eq(vmem__word(&m, ch.area + 100 * PAGE + 8, &w), 0);
	cr_assert_eq(w, 0x0303030303030303ULL);
	cr_assert_eq(m.read_bytes, NTOUCHED * PAGE + 8 + 8);
	cr_assert_eq(unit_rss_anon(ch.pid), before);
	/* Unmapped: -EFAULT. */
	cr_assert_eq(vmem__word(&m, 8, &w), -EFAULT);
	vmem__close(&m);
	end_child(&ch);
	free(buf);
}

/* vmem__peek: one word, its page looked up alone, with or without a cache. */
Test(vmem, peek_reads_present_words_only, .timeout = 10)
{
	struct child ch;
	struct vmem m;
	long before;
	uint64_t w = 1;
	int cached;

	start_child(&ch);
	before = unit_rss_anon(ch.pid);
	cr_assert_eq(vmem__open(&m, ch.pid), 0);
	for (cached = 0; cached < 2; cached++) {
		if (cached) /* the cache now covers the area */
			cr_assert_eq(vmem__word(&m, ch.area, &w), 0);
		cr_assert_eq(vmem__peek(&m, ch.area + 5001 * PAGE + 64, &w), 0);
		cr_assert_eq(w, 0x0505050505050505ULL);
		w = 1;
		cr_assert_eq(vmem__peek(&m, ch.area + 77 * PAGE, &w), 0);
		cr_assert_eq(w, 0, "an absent page reads as zero");
	}
	cr_assert_eq(unit_rss_anon(ch.pid), before);
	cr_assert_eq(vmem__peek(&m, 8, &w), -EFAULT);
	cr_assert_eq(vmem__peek(&m, ch.area + 3, &w), -EFAULT);
	end_child(&ch);
	vmem__forget(&m);
	cr_assert_eq(vmem__peek(&m, ch.area, &w), -ESRCH);
	vmem__close(&m);
}

Test(vmem, gone_is_esrch, .timeout = 10)
{
	struct child ch;
	struct vmem m;
	uint64_t w, bits[1];

	start_child(&ch);
	cr_assert_eq(vmem__open(&m, ch.pid), 0);
	end_child(&ch);
	vmem__forget(&m);
	cr_assert_eq(vmem__word(&m, ch.area, &w), -ESRCH);
	cr_assert_eq(vmem__present(&m, ch.area, ch.area + PAGE, bits), -ESRCH);
	vmem__close(&m);
	cr_assert_eq(vmem__open(&m, ch.pid), -ESRCH);
}
