// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>
#include "lib/text.h"
#include "unit.h"

static const char *bytes(uint64_t n)
{
	static char buf[32];

	memset(buf, 'x', sizeof(buf));
	text__bytes(n, buf, sizeof(buf));
	return buf;
}

static const char *count(double n)
{
	static char buf[32];

	memset(buf, 'x', sizeof(buf));
	text__count(n, buf, sizeof(buf));
	return buf;
}

Test(text, bytes, .timeout = 10)
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
Test(text, bytes_rounding_at_unit_edges, .timeout = 10)
{
	cr_assert_str_eq(bytes(1024 * 1024 - 1), "1.0 MiB");
	cr_assert_str_eq(bytes(1023 * 1024 + 1000), "1.0 MiB");
	cr_assert_str_eq(bytes(1023 * 1024 + 900), "1023.9 KiB");
	cr_assert_str_eq(bytes((1ULL << 30) - 1), "1.0 GiB");
	cr_assert_str_eq(bytes((1ULL << 20) * 1023 + (1ULL << 19)), "1023.5 "
								    "MiB");
}

Test(text, bytes_truncates_to_buffer, .timeout = 10)
{
	char small[4];

	text__bytes(1536, small, sizeof(small));
	cr_assert_str_eq(small, "1.5");
}

Test(text, count, .timeout = 10)
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
Test(text, count_rounding_at_unit_edges, .timeout = 10)
{
	cr_assert_str_eq(count(999.4), "999");
	cr_assert_str_eq(count(999.6), "1.0k");
	cr_assert_str_eq(count(999940), "999.9k");
	cr_assert_str_eq(count(999960), "1.0M");
}

Test(text, base_name, .timeout = 10)
{
	cr_assert_str_eq(text__base_name("/usr/lib/libc.so.6"), "libc.so.6");
	cr_assert_str_eq(text__base_name("plain.py"), "plain.py");
	cr_assert_str_eq(text__base_name("dir/"), "");
	cr_assert_null(text__base_name(NULL));
}
