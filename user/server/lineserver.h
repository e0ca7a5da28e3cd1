/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A Unix socket served from the agent's loop: one JSON line in, one JSON
 * line out, per connection. Nothing in it blocks the loop: the listening
 * socket and each client are registered with it, each client reads into
 * its own buffer (the request line, up to max_line bytes) and writes from
 * its own (the reply), is watched for writing only while a reply waits,
 * and is cut off by its own timer when it is too slow to send or to read.
 * The owner only says who may ask (accept) and what the answer is
 * (answer): query.c's agent.sock is one owner, a second socket another.
 */
#ifndef MEMPROF_LINESERVER_H
#define MEMPROF_LINESERVER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct line_server;

struct line_server_ops {
	/*
	 * A client connected on fd (SO_PEERCRED tells who): NULL to read
	 * its request, or the reply to send at once, a refusal. *tag comes
	 * back with its request.
	 */
	json_t *(*accept)(void *ctx, int fd, long *tag);
	/*
	 * The request line, len bytes without the '\n'; or, with line NULL,
	 * why none came (err: timed out, nothing sent, too long). Returns
	 * the reply (the server decrefs it; NULL: "out of memory").
	 */
	json_t *(*answer)(void *ctx, long tag, const char *line, size_t len,
			  const char *err);
};

struct line_server_limits {
	size_t max_line; /* request bytes before the '\n' */
	uint64_t read_ns; /* for the whole request, however it trickles */
	uint64_t write_ns; /* for the whole reply; a slow reader loses it */
	int max_clients; /* served at once; more wait in the backlog */
};

/*
 * Listen on path (a stale socket there is replaced), open to every user:
 * the owner's accept decides who is answered. 0 and *out, or -errno.
 */
int line_server__start(struct loop *l, const char *path,
		       const struct line_server_limits *lim,
		       const struct line_server_ops *ops, void *ctx,
		       struct line_server **out);
/* Drop the clients, stop listening, remove path if it is still ours. */
void line_server__stop(struct line_server *s);

#endif
