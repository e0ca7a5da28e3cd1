// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "log.h"

int args__choice(const char *flag, const char *arg, const char *const *names,
		 size_t n)
{
	char list[256] = "";
	size_t i, len = 0;

	for (i = 0; i < n; i++)
		if (!strcmp(arg, names[i]))
			return (int)i;
	/* "a, b or c": the choices, as the error line names them. */
	for (i = 0; i < n && len < sizeof(list); i++)
		len += snprintf(list + len, sizeof(list) - len, "%s%s",
				i == 0	     ? ""
				: i + 1 == n ? " or "
					     : ", ",
				names[i]);
	log_err("%s wants %s, not '%s'", flag, list, arg);
	return -1;
}

int args__pid(const char *arg, pid_t *pid)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v <= 0 || v > INT_MAX) {
		log_err("--pid wants a process id, not '%s'", arg);
		return -1;
	}
	*pid = (pid_t)v;
	return 0;
}
