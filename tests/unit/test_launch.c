// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include "procs/launch.h"
#include "unit.h"

/* /proc/PID/exe's target: a launcher is known by its basename. */
Test(launch, launchers_by_basename, .timeout = 10)
{
	cr_assert(launch__is_launcher("/usr/bin/env"));
	cr_assert(launch__is_launcher("/usr/sbin/chroot"));
	cr_assert(launch__is_launcher("/usr/bin/unshare"));
	cr_assert(launch__is_launcher("/usr/bin/setarch")); /* linux64 -> */
	cr_assert(launch__is_launcher("nice"));
	cr_assert(launch__is_launcher("/usr/bin/dash")); /* /bin/sh */
	cr_assert(launch__is_launcher("/usr/bin/bash"));
}

/* The program itself, and what forks its command or cannot be traced. */
Test(launch, programs_are_not_launchers, .timeout = 10)
{
	cr_assert_not(launch__is_launcher("/usr/bin/python3.11"));
	cr_assert_not(launch__is_launcher("/usr/bin/sudo"));
	cr_assert_not(launch__is_launcher("/usr/bin/timeout"));
	cr_assert_not(launch__is_launcher("/usr/bin/envsubst"));
	cr_assert_not(launch__is_launcher("/opt/env/bin/python3"));
	cr_assert_not(launch__is_launcher("/usr/bin/"));
	cr_assert_not(launch__is_launcher(""));
}
