// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include "format/snapv2.h"
#include "unit.h"

/*
 * A version-1 document whose two sections share frames and a stack: the
 * peak's and the current's first stacks are the same three frames.
 */
static const char V1[] =
	"{\"schema\":\"memprof-bpf/snapshot\",\"version\":1,\"pid\":7,"
	"\"comm\":\"py\",\"timeline\":{\"live\":[1,2,3]},"
	"\"peak\":{\"bytes\":3500,\"count\":3,\"at\":\"t\",\"cells\":[],"
	" \"stacks\":["
	"  {\"bytes\":2000,\"count\":1,\"cell\":\"In [1]\",\"frames\":["
	"   {\"function\":\"<module>\",\"file\":\"/x/a.py\",\"line\":4,"
	"    \"native\":false},"
	"   {\"function\":\"f\",\"file\":\"/x/a.py\",\"line\":9,"
	"    \"native\":false},"
	"   {\"function\":\"malloc\",\"file\":null,\"line\":null,"
	"    \"module\":\"/lib/libc.so.6\",\"offset\":16,"
	"    \"address\":\"0x7f0010\",\"native\":true}]},"
	"  {\"bytes\":1000,\"count\":1,\"cell\":null,\"frames\":["
	"   {\"function\":\"<module>\",\"file\":\"/x/a.py\",\"line\":4,"
	"    \"native\":false},"
	"   {\"function\":null,\"file\":null,\"line\":null,"
	"    \"module\":\"/lib/libc.so.6\",\"offset\":32,"
	"    \"address\":\"0x7f0020\",\"native\":true}]},"
	"  {\"bytes\":500,\"count\":1,\"cell\":\"In [1]\",\"frames\":[]}]},"
	"\"current\":{\"bytes\":2000,\"count\":1,\"at\":\"u\",\"cells\":[],"
	" \"stacks\":["
	"  {\"bytes\":2000,\"count\":1,\"cell\":\"In [1]\",\"frames\":["
	"   {\"function\":\"<module>\",\"file\":\"/x/a.py\",\"line\":4,"
	"    \"native\":false},"
	"   {\"function\":\"f\",\"file\":\"/x/a.py\",\"line\":9,"
	"    \"native\":false},"
	"   {\"function\":\"malloc\",\"file\":null,\"line\":null,"
	"    \"module\":\"/lib/libc.so.6\",\"offset\":16,"
	"    \"address\":\"0x7f0010\",\"native\":true}]}]}}";

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *d = json_loads(text, 0, &e);

	cr_assert_not_null(d, "%s", e.text);
	return d;
}

Test(snapv2, every_frame_and_stack_once, .timeout = 10)
{
	json_t *v1 = parse(V1), *v2 = snapv2__pack(v1);
	json_t *peak;

	cr_assert_not_null(v2);
	cr_assert_eq(json_integer_value(json_object_get(v2, "version")), 2);
	/* <module>, f, malloc+16, the unnamed +32: four frames. */
	cr_assert_eq(json_array_size(json_object_get(v2, "frames")), 4);
	/* Three stacks: the current's is the peak's first. */
	cr_assert_eq(json_array_size(json_object_get(v2, "stacks")), 3);
	peak = json_object_get(json_object_get(v2, "peak"), "stacks");
	cr_assert_eq(
		json_integer_value(json_object_get(
			json_array_get(json_object_get(json_object_get(v2, "cur"
									   "ren"
									   "t"),
						       "stacks"),
				       0),
			"stack")),
		json_integer_value(
			json_object_get(json_array_get(peak, 0), "stack")));
	/* Strings once: <module>, /x/a.py, f, malloc, libc, 2 addresses, In [1]. */
	cr_assert_eq(json_array_size(json_object_get(v2, "strings")), 8);
	cr_assert(
		json_is_integer(json_object_get(json_array_get(peak, 0), "cel"
									 "l")));
	cr_assert(json_is_null(json_object_get(json_array_get(peak, 1), "cel"
									"l")));
	json_decref(v1);
	json_decref(v2);
}

Test(snapv2, expanded_is_version_one_again, .timeout = 10)
{
	json_t *v1 = parse(V1), *v2 = snapv2__pack(v1), *back;
	char err[256] = "";

	back = snapv2__expand(v2, err, sizeof(err));
	cr_assert_not_null(back, "%s", err);
	cr_assert(json_equal(back, v1), "round trip differs");
	/* Through text, as a file carries it. */
	{
		char *text = json_dumps(v2, JSON_COMPACT);
		json_t *read = parse(text), *again;

		again = snapv2__expand(read, err, sizeof(err));
		cr_assert(json_equal(again, v1));
		json_decref(again);
		json_decref(read);
		free(text);
	}
	json_decref(back);
	json_decref(v2);
	json_decref(v1);
}

#define HEAD "{\"schema\":\"memprof-bpf/snapshot\",\"version\":2,"

/* One damaged document per kind of bad index or table. */
static const char *const damaged[] = {
	/* a string index past the table */
	HEAD "\"strings\":[\"a\"],\"frames\":[{\"function\":5}],"
	     "\"stacks\":[[0]],\"peak\":{\"stacks\":[{\"stack\":0}]}}",
	/* a frame index past the table */
	HEAD "\"strings\":[\"a\"],\"frames\":[{\"function\":0}],"
	     "\"stacks\":[[0,1]],\"peak\":{\"stacks\":[{\"stack\":0}]}}",
	/* a stack index past the table, and a negative one */
	HEAD "\"strings\":[],\"frames\":[],\"stacks\":[[]],"
	     "\"peak\":{\"stacks\":[{\"stack\":1}]}}",
	HEAD "\"strings\":[],\"frames\":[],\"stacks\":[[]],"
	     "\"peak\":{\"stacks\":[{\"stack\":-1}]}}",
	/* a cell's string index with no strings */
	HEAD "\"strings\":[],\"frames\":[],\"stacks\":[[]],"
	     "\"peak\":{\"stacks\":[{\"stack\":0,\"cell\":0}]}}",
	/* a "string" that is a number */
	HEAD "\"strings\":[3],\"frames\":[{\"file\":0}],\"stacks\":[[0]],"
	     "\"peak\":{\"stacks\":[{\"stack\":0}]}}",
	/* tables of the wrong type, a section's stacks too */
	HEAD "\"strings\":{},\"frames\":[],\"stacks\":[],"
	     "\"peak\":{\"stacks\":[]}}",
	HEAD "\"strings\":[],\"frames\":[],\"stacks\":[],"
	     "\"peak\":{\"stacks\":{}}}",
};

/* Each gets a reason, never a read out of bounds. */
Test(snapv2, bad_indexes_are_refused, .timeout = 10)
{
	size_t i;

	for (i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
		json_t *d = parse(damaged[i]);
		char err[256] = "";

		cr_assert_null(snapv2__expand(d, err, sizeof(err)), "%zu", i);
		cr_assert_not_null(strstr(err, "damaged"), "%zu: %s", i, err);
		json_decref(d);
	}
}
