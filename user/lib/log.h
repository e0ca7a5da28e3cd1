/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Leveled logging to stderr, keyed on the global verbosity. */
#ifndef MEMPROF_LOG_H
#define MEMPROF_LOG_H

#include <stdio.h>

extern int log_verbosity;

/* One line, prefixed with the tool name: the user-facing error format. */
#define log_err(fmt, ...) \
	fprintf(stderr, "memprof-bpf: " fmt "\n", ##__VA_ARGS__)
#define log_warn(fmt, ...) \
	fprintf(stderr, "memprof-bpf: warning: " fmt "\n", ##__VA_ARGS__)
#define log_info(fmt, ...)                                        \
	do {                                                      \
		if (log_verbosity >= 1)                           \
			fprintf(stderr, "memprof-bpf: " fmt "\n", \
				##__VA_ARGS__);                   \
	} while (0)
#define log_debug(fmt, ...)                                              \
	do {                                                             \
		if (log_verbosity >= 2)                                  \
			fprintf(stderr, "memprof-bpf: debug: " fmt "\n", \
				##__VA_ARGS__);                          \
	} while (0)

#endif
