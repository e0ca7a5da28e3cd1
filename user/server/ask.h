/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Asking a running agent from another memprof-bpf process (memprof-bpf
 * names, run as root): the query socket's root client (query.h), which
 * names the traced process in every request. One connection per request
 * (the agent closes after its reply), each call bounded by ASK_TIMEOUT_NS
 * in all, however many requests it takes.
 *
 * Every call returns 0, or:
 *   -ENOENT     no agent listens (no socket, or nobody accepts on it)
 *   -ESRCH      the agent does not trace pid ("not traced")
 *   -EACCES     the agent refused this process (not root, not traced)
 *   -EPROTO     a reply that is not what the protocol says, or an error
 *               the agent gave for the request
 *   -ETIMEDOUT  no whole reply within the bound
 *   or another -errno (socket, memory).
 */
#ifndef MEMPROF_ASK_H
#define MEMPROF_ASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ASK_TIMEOUT_NS 3000000000ULL /* per call, all its requests */

struct ask_block {
	bool found; /* false: no live block or mapping holds the address */
	uint64_t start, size; /* the block (or anonymous mapping) */
	bool mapping; /* "kind": "mapping" */
	char cell[32]; /* "In [3]" or "" */
	char where[256]; /* the reply's "where", or "" */
};

/* dir: the state dir (NULL: $MEMPROF_BPF_STATE_DIR or PUBLISH_DIR). */
int ask__live(const char *dir, pid_t pid, uint64_t *live_bytes);
/*
 * out[i] for addrs[i]; more than QUERY_MAX_ADDRS addresses go in several
 * requests. On an error, what was not answered reads as not found.
 */
int ask__lookup(const char *dir, pid_t pid, const uint64_t *addrs, size_t n,
		struct ask_block *out);

#endif
