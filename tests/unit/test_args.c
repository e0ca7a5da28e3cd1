// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include "lib/args.h"
#include "unit.h"

static const char *const names[] = { "cell", "stack", "file" };

Test(args, choice_index_or_one_error_line, .timeout = 10)
{
	struct capture c;
	char err[256];

	cr_assert_eq(args__choice("--by", "cell", names, 3), 0);
	cr_assert_eq(args__choice("--by", "file", names, 3), 2);
	capture_begin(&c, 2);
	cr_assert_eq(args__choice("--by", "line", names, 3), -1);
	capture_end(&c, err, sizeof(err));
	cr_assert_str_eq(err, "memprof-bpf: --by wants cell, stack or file, "
			      "not 'line'\n");
	capture_begin(&c, 2);
	cr_assert_eq(args__choice("--x", "b", names, 1), -1);
	capture_end(&c, err, sizeof(err));
	cr_assert_str_eq(err, "memprof-bpf: --x wants cell, not 'b'\n");
}
