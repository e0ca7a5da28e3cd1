// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include "lib/frame.h"
#include "unit.h"

static const struct site_frame import_numpy = { .kind = FRAME_IMPORT,
						.module = "numpy" };
static const struct site_frame shell = { .kind = FRAME_PYTHON,
					 .function = "run_code",
					 .file = "/usr/lib/shell.py",
					 .line = 20 };
static const struct site_frame zeros = { .kind = FRAME_PYTHON,
					 .function = "zeros",
					 .file = "/np/numeric.py",
					 .line = 10 };
static const struct site_frame lost = { .kind = FRAME_MARKER,
					.function = "[Python stack lost]" };
static const struct site_frame native = { .kind = FRAME_NATIVE,
					  .resolved = true,
					  .function = "PyArray_Zeros",
					  .module = "/np/_umath.so",
					  .addr = 0x7f0000001000,
					  .offset = 0x12 };
static const struct site_frame nameless = { .kind = FRAME_NATIVE,
					    .addr = 0x401000 };

Test(frame, function_and_import_label, .timeout = 10)
{
	char buf[96];

	cr_assert_str_eq(site_frame__function(&import_numpy, buf, sizeof(buf)),
			 "[import numpy]");
	cr_assert_eq(site_frame__function(&zeros, buf, sizeof(buf)),
		     zeros.function, "referred to, not copied");
	cr_assert_null(site_frame__function(&nameless, buf, sizeof(buf)));
}

Test(frame, names, .timeout = 10)
{
	char buf[128];

	site_frame__name(&zeros, buf, sizeof(buf));
	cr_assert_str_eq(buf, "zeros (numeric.py:10)");
	site_frame__name(&native, buf, sizeof(buf));
	cr_assert_str_eq(buf, "PyArray_Zeros (_umath.so)");
	site_frame__name(&nameless, buf, sizeof(buf));
	cr_assert_str_eq(buf, "[unknown]");
	site_frame__name(&lost, buf, sizeof(buf));
	cr_assert_str_eq(buf, "[Python stack lost]");
	site_frame__name(&import_numpy, buf, sizeof(buf));
	cr_assert_str_eq(buf, "[import numpy]");
}

/* The innermost Python line; a marker as it is; else the native leaf. */
Test(frame, where, .timeout = 10)
{
	const struct site_frame py[] = { import_numpy, shell, zeros, native };
	const struct site_frame marked[] = { shell, lost, native };
	char buf[128];

	site_frame__where(py, 4, buf, sizeof(buf));
	cr_assert_str_eq(buf, "numeric.py:10 zeros");
	cr_assert_eq(site_frame__leaf_python(py, 4), &py[2]);
	site_frame__where(marked, 3, buf, sizeof(buf));
	cr_assert_str_eq(buf, "[Python stack lost]");
	site_frame__where(&native, 1, buf, sizeof(buf));
	cr_assert_str_eq(buf, "PyArray_Zeros (_umath.so)");
	cr_assert_null(site_frame__leaf_python(&native, 1));
	site_frame__where(py, 1, buf, sizeof(buf));
	cr_assert_str_eq(buf, "[import numpy]");
	site_frame__where(NULL, 0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "(no frames)");
}
