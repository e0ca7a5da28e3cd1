/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The agent's query socket, <state dir>/agent.sock: a traced process (a
 * notebook kernel's big_objs()) asks about its own memory, one JSON line
 * in, one JSON line out (python/README.md, "The agent's query socket"):
 *
 *   {"op": "live"}                  -> live and peak bytes now
 *   {"op": "cells"}                 -> the per-cell document %memprof shows
 *                                      (publish.c), every record the caller
 *                                      made before asking applied
 *   {"op": "lookup", "addrs": [..]} -> the live block or anonymous mapping
 *                                      holding each address, its site
 *
 * The caller is whoever SO_PEERCRED says. A tracee, of the same real uid
 * (or root), is only ever told about its own heap: a "pid" it sends is
 * ignored. A root process the agent does not trace (memprof-bpf names,
 * through ask.c) must send "pid": N, and is told about tracee N ("not
 * traced" with that pid when N is not an attached, live tracee; without
 * a "pid", "not traced" with its own). Anyone else is refused. Requests are served from the agent's loop without
 * blocking it (lineserver.c): a request must come within 1 s and its
 * reply be read within 2 s.
 */
#ifndef MEMPROF_QUERY_H
#define MEMPROF_QUERY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct agent;
struct heap;
struct loop;
struct tracee;

#define QUERY_SOCKET "agent.sock"
#define QUERY_MAX_LINE (8u << 20) /* request bytes before the '\n' */
#define QUERY_MAX_ADDRS 200000

enum query_op { QUERY_LIVE, QUERY_CELLS, QUERY_LOOKUP };

struct query_request {
	enum query_op op;
	pid_t pid; /* "pid": positive; 0 when absent (a root client's) */
	uint64_t *addrs; /* lookup: in the caller's order */
	size_t naddrs;
};

/*
 * Parse one request line (len bytes, no NUL needed). 0, or -1 with a
 * one-line reason in err. Free with query__request_free().
 */
int query__parse(const char *line, size_t len, struct query_request *req,
		 char *err, size_t errlen);
void query__request_free(struct query_request *req);

enum query_kind { QUERY_NONE, QUERY_BLOCK, QUERY_MAPPING };

/* What holds an address: start <= addr < start + size. */
struct query_hit {
	uint64_t start, size;
	uint32_t site;
	enum query_kind kind;
};

/*
 * For each addrs[i], the live block or anonymous mapping of h containing
 * it, in out[i] (kind QUERY_NONE: neither). A block wins over a mapping.
 * 0, or -ENOMEM.
 */
int query__contain(const struct heap *h, const uint64_t *addrs, size_t n,
		   struct query_hit *out);

/* Replies (caller decrefs); t's sites resolved (tracee__resolve_sites). */
json_t *query__live_reply(const struct tracee *t);
json_t *query__lookup_reply(const struct tracee *t,
			    const struct query_request *req);
/* {"error": msg} with "pid" when pid > 0. */
json_t *query__error_reply(const char *msg, pid_t pid);

/*
 * Listen on <a->publish_dir>/agent.sock (when publishing), served from
 * the loop; 0 or -errno.
 */
int query__start(struct agent *a, struct loop *loop);
/* Close and remove the socket (if it is still ours). */
void query__stop(struct agent *a);

#endif
