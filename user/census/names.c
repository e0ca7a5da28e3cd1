// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The census's words, one home for every output that names them. */
#include "census.h"

const char *census__kind_name(enum census_kind kind)
{
	static const char *const name[CENSUS_KINDS] = {
		[CENSUS_HEAP] = "heap",
		[CENSUS_MMAPPED] = "mmapped",
		[CENSUS_PYTHON] = "Python objects",
		[CENSUS_ANON] = "other anonymous",
	};

	return kind < CENSUS_KINDS ? name[kind] : "?";
}

const char *census__state_name(enum census_state state)
{
	static const char *const name[] = {
		[CENSUS_NONE] = NULL,	    [CENSUS_OFF] = "off",
		[CENSUS_QUEUED] = "queued", [CENSUS_RUNNING] = "running",
		[CENSUS_DONE] = "done",	    [CENSUS_FAILED] = "failed",
	};

	return state <= CENSUS_FAILED ? name[state] : NULL;
}
