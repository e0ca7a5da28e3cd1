/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Helpers every command line parser here shares (agent, report, diff). */
#ifndef MEMPROF_ARGS_H
#define MEMPROF_ARGS_H

#include <stddef.h>
#include <sys/types.h>

/*
 * The index of arg among names, or -1 after one error line naming flag
 * and the choices ("--by wants cell, stack or file, not 'x'").
 */
int args__choice(const char *flag, const char *arg, const char *const *names,
		 size_t n);

/* A process id (1..INT_MAX); -1 after one error line naming --pid. */
int args__pid(const char *arg, pid_t *pid);

#endif
