// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <stdint.h>
#include "agent.h"
#include "batch.h"
#include "tracee.h"
#include "unit.h"

static const char *bytes(uint64_t n)
{
	static char buf[32];

	memset(buf, 'x', sizeof(buf));
	batch__fmt_bytes(n, buf, sizeof(buf));
	return buf;
}

static const char *count(double n)
{
	static char buf[32];

	memset(buf, 'x', sizeof(buf));
	batch__fmt_count(n, buf, sizeof(buf));
	return buf;
}

Test(batch, fmt_bytes, .timeout = 10)
{
	cr_assert_str_eq(bytes(0), "0 B");
	cr_assert_str_eq(bytes(1), "1 B");
	cr_assert_str_eq(bytes(1023), "1023 B");
	cr_assert_str_eq(bytes(1024), "1.0 KiB");
	cr_assert_str_eq(bytes(1536), "1.5 KiB");
	cr_assert_str_eq(bytes(10 * 1024 + 307), "10.3 KiB");
	cr_assert_str_eq(bytes(5 * 1024 * 1024), "5.0 MiB");
	cr_assert_str_eq(bytes(3ULL << 30), "3.0 GiB");
	cr_assert_str_eq(bytes(2ULL << 40), "2.0 TiB");
	cr_assert_str_eq(bytes(7ULL << 50), "7.0 PiB");
	cr_assert_str_eq(bytes(2048ULL << 50), "2048.0 PiB",
			 "no unit past PiB");
}

/* Values that round up to 1024 of a unit are shown in the next unit. */
Test(batch, fmt_bytes_rounding_at_unit_edges, .timeout = 10)
{
	cr_assert_str_eq(bytes(1024 * 1024 - 1), "1.0 MiB");
	cr_assert_str_eq(bytes(1023 * 1024 + 1000), "1.0 MiB");
	cr_assert_str_eq(bytes(1023 * 1024 + 900), "1023.9 KiB");
	cr_assert_str_eq(bytes((1ULL << 30) - 1), "1.0 GiB");
	cr_assert_str_eq(bytes((1ULL << 20) * 1023 + (1ULL << 19)), "1023.5 "
								    "MiB");
}

Test(batch, fmt_bytes_truncates_to_buffer, .timeout = 10)
{
	char small[4];

	batch__fmt_bytes(1536, small, sizeof(small));
	cr_assert_str_eq(small, "1.5");
}

Test(batch, fmt_count, .timeout = 10)
{
	cr_assert_str_eq(count(0), "0");
	cr_assert_str_eq(count(950), "950");
	cr_assert_str_eq(count(999), "999");
	cr_assert_str_eq(count(1000), "1.0k");
	cr_assert_str_eq(count(12345), "12.3k");
	cr_assert_str_eq(count(4.5e6), "4.5M");
	cr_assert_str_eq(count(2.5e9), "2500.0M");
}

/* Rates that round up to 1000 of a unit are shown in the next unit. */
Test(batch, fmt_count_rounding_at_unit_edges, .timeout = 10)
{
	cr_assert_str_eq(count(999.4), "999");
	cr_assert_str_eq(count(999.6), "1.0k");
	cr_assert_str_eq(count(999940), "999.9k");
	cr_assert_str_eq(count(999960), "1.0M");
}

Test(batch, report_lines, .timeout = 10)
{
	static struct agent a;
	struct tracee *t;
	char out[4096];
	FILE *f;
	size_t n;

	/* Nothing traced yet while waiting for --pid/--comm processes. */
	f = tmpfile();
	cr_assert_not_null(f);
	batch__report(&a, f, 1.0);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	cr_assert_eq(count_lines(out), 2, "%s", out);
	cr_assert_eq(strncmp(out, "TIME", 4), 0, "a header first: %s", out);
	cr_assert_not_null(strstr(out, "(no traced process yet)"));

	t = tracee__new(getpid(), true);
	cr_assert_not_null(t);
	t->heap.live_bytes = 1536;
	t->heap.peak_bytes = 5 * 1024 * 1024;
	t->heap.allocs = 500;
	t->dropped = 3;
	t->attach = ATTACH_DONE;
	cr_assert_eq(tracees__add(&a.procs, t), 0);
	f = tmpfile();
	batch__report(&a, f, 2.0);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	cr_assert_eq(count_lines(out), 1, "no header on the second line: %s",
		     out);
	cr_assert_not_null(strstr(out, "test_batch"), "%s", out);
	cr_assert_not_null(strstr(out, "1.5 KiB"), "%s", out);
	cr_assert_not_null(strstr(out, "5.0 MiB"), "%s", out);
	cr_assert_not_null(strstr(out, " 250 "), "500 allocs in 2 s: %s", out);
	cr_assert_eq(t->alloc_rate, 250.0);
	cr_assert_eq(t->allocs_prev, 500);
	cr_assert_null(strstr(out, "attach"), "%s", out);

	t->attach = ATTACH_FAILED;
	f = tmpfile();
	batch__report(&a, f, 1.0);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	cr_assert_not_null(strstr(out, "(attach failed)"), "%s", out);
	cr_assert_eq(t->alloc_rate, 0.0, "no new allocations");
	tracees__free(&a.procs);
}
