// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "lib/clock.h"
#include "lib/log.h"
#include "output/publish.h"
#include "ask.h"
#include "query.h"

#define MAX_REPLY (512u << 20) /* 200,000 blocks take about 40 MiB */
#define BACKLOG_RETRY_US 10000 /* the agent's backlog is full: try again */

/* <dir>/agent.sock, dir defaulting as the agent's does (main.c). */
static int socket_path(const char *dir, struct sockaddr_un *addr)
{
	const char *env = getenv("MEMPROF_BPF_STATE_DIR");
	int len;

	if (!dir)
		dir = env && *env ? env : PUBLISH_DIR;
	*addr = (struct sockaddr_un){ .sun_family = AF_UNIX };
	len = snprintf(addr->sun_path, sizeof(addr->sun_path), "%s/%s", dir,
		       QUERY_SOCKET);
	return len < (int)sizeof(addr->sun_path) ? 0 : -ENAMETOOLONG;
}

/* Wait for events on fd until the deadline: no call blocks past it. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		uint64_t now = now_monotonic_ns();
		int rc;

		if (now >= deadline)
			return -ETIMEDOUT;
		rc = poll(&p, 1, (deadline - now + 999999) / 1000000);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * Connect without blocking: a Unix socket's connect fails at once with
 * EAGAIN while the agent's backlog is full; try again until the deadline.
 * No socket file, or nobody accepting on it: no agent (-ENOENT).
 */
static int dial(const struct sockaddr_un *addr, uint64_t deadline)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	while (connect(fd, (const struct sockaddr *)addr, sizeof(*addr))) {
		int err = errno;

		if (err == EAGAIN && now_monotonic_ns() < deadline) {
			usleep(BACKLOG_RETRY_US);
			continue;
		}
		close(fd);
		if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR)
			return -ENOENT;
		return err == EAGAIN ? -ETIMEDOUT : -err;
	}
	return fd;
}

/*
 * Send the request. The agent may refuse before reading it and close:
 * then the refusal is still there to read, so a closed peer is no error.
 */
static int send_all(int fd, const char *buf, size_t len, uint64_t deadline)
{
	size_t off = 0;

	while (off < len) {
		ssize_t sent = send(fd, buf + off, len - off,
				    MSG_NOSIGNAL | MSG_DONTWAIT);
		int err;

		if (sent >= 0) {
			off += sent;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EPIPE || errno == ECONNRESET)
			return 0;
		if (errno != EAGAIN)
			return -errno;
		err = wait_fd(fd, POLLOUT, deadline);
		if (err)
			return err;
	}
	return 0;
}

/* Room for more of the reply, up to MAX_REPLY. */
static int grow(char **buf, size_t *cap)
{
	size_t want = *cap ? *cap * 2 : 64 << 10;
	char *p;

	if (*cap >= MAX_REPLY)
		return -EPROTO;
	p = realloc(*buf, want);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = want;
	return 0;
}

/*
 * The reply line (without its '\n') in *buf, *len bytes: the agent sends
 * one line, then closes; its end without a '\n' ends it too.
 */
static int read_line(int fd, uint64_t deadline, char **buf, size_t *len)
{
	bool done = false;
	size_t cap = 0;
	int err = 0;

	*buf = NULL;
	*len = 0;
	while (!err && !done) {
		ssize_t got;
		char *nl;

		if (*len == cap && (err = grow(buf, &cap)))
			break;
		got = recv(fd, *buf + *len, cap - *len, MSG_DONTWAIT);
		if (got < 0 && errno == EAGAIN)
			err = wait_fd(fd, POLLIN, deadline);
		else if (got < 0 && errno != EINTR)
			err = -errno;
		if (got == 0) { /* closed: all there is, if anything */
			err = *len ? 0 : -EPROTO;
			done = true;
		}
		nl = got > 0 ? memchr(*buf + *len, '\n', got) : NULL;
		if (nl) {
			got = nl - (*buf + *len);
			done = true;
		}
		if (got > 0)
			*len += got;
	}
	if (!err)
		return 0;
	free(*buf);
	*buf = NULL;
	return err;
}

/* One request, one reply: a JSON object in *reply (caller decrefs). */
static int exchange(const struct sockaddr_un *addr, json_t *req,
		    uint64_t deadline, json_t **reply)
{
	char *text = json_dumps(req, JSON_COMPACT), *line = NULL;
	size_t len = 0;
	int fd, err;

	if (!text)
		return -ENOMEM;
	fd = dial(addr, deadline);
	err = fd < 0 ? fd : 0;
	if (!err) {
		size_t n = strlen(text);

		text[n] = '\n'; /* over the NUL: the length is known */
		err = send_all(fd, text, n + 1, deadline);
	}
	if (!err)
		err = read_line(fd, deadline, &line, &len);
	if (fd >= 0)
		close(fd);
	free(text);
	*reply = err ? NULL : json_loadb(line, len, 0, NULL);
	free(line);
	if (!err && !json_is_object(*reply)) {
		json_decref(*reply);
		*reply = NULL;
		err = -EPROTO;
	}
	return err;
}

/*
 * An "error" reply as an errno: "not traced" about pid is -ESRCH; about
 * another pid (ours) the agent refused us, -EACCES; anything else says
 * the request was wrong, -EPROTO. 0: no error.
 */
static int reply_error(json_t *reply, pid_t pid)
{
	const char *msg = json_string_value(json_object_get(reply, "error"));
	json_int_t named = json_integer_value(json_object_get(reply, "pid"));

	if (!json_object_get(reply, "error"))
		return 0;
	log_debug("agent, asked about pid %d: %s", (int)pid,
		  msg ? msg : "(no message)");
	if (msg && !strcmp(msg, "not traced"))
		return named == pid ? -ESRCH : -EACCES;
	return -EPROTO;
}

/*
 * Ask about pid: the reply, an object naming pid without an error, in
 * *reply (caller decrefs). Takes req's reference.
 */
static int ask(const char *dir, pid_t pid, json_t *req, uint64_t deadline,
	       json_t **reply)
{
	struct sockaddr_un addr;
	int err = req ? socket_path(dir, &addr) : -ENOMEM;

	*reply = NULL;
	if (!err)
		err = exchange(&addr, req, deadline, reply);
	json_decref(req);
	if (err)
		return err;
	err = reply_error(*reply, pid);
	if (!err && json_integer_value(json_object_get(*reply, "pid")) != pid)
		err = -EPROTO; /* an answer about another process */
	if (err) {
		json_decref(*reply);
		*reply = NULL;
	}
	return err;
}

/* A non-negative integer field. */
static int get_u64(json_t *o, const char *key, uint64_t *v)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return -EPROTO;
	*v = json_integer_value(j);
	return 0;
}

int ask__live(const char *dir, pid_t pid, uint64_t *live_bytes)
{
	json_t *reply = NULL;
	int err = ask(dir, pid,
		      json_pack("{s:s, s:i}", "op", "live", "pid", pid),
		      now_monotonic_ns() + ASK_TIMEOUT_NS, &reply);

	if (!err)
		err = get_u64(reply, "live_bytes", live_bytes);
	json_decref(reply);
	return err;
}

/* A string field, or null, copied (truncated) into buf: "" for null. */
static int get_text(json_t *o, const char *key, char *buf, size_t len)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_string(j) && !json_is_null(j))
		return -EPROTO;
	snprintf(buf, len, "%s",
		 j && json_is_string(j) ? json_string_value(j) : "");
	return 0;
}

/* One entry of "blocks": null, or a block or mapping holding addr. */
static int parse_block(json_t *b, uint64_t addr, struct ask_block *out)
{
	const char *kind = json_string_value(json_object_get(b, "kind"));

	memset(out, 0, sizeof(*out));
	if (json_is_null(b))
		return 0;
	if (!json_is_object(b) || !kind || get_u64(b, "start", &out->start) ||
	    get_u64(b, "size", &out->size) ||
	    get_text(b, "cell", out->cell, sizeof(out->cell)) ||
	    get_text(b, "where", out->where, sizeof(out->where)))
		return -EPROTO;
	if (addr < out->start || addr - out->start >= out->size)
		return -EPROTO; /* not the block we asked about */
	out->mapping = !strcmp(kind, "mapping");
	out->found = true;
	return 0;
}

/*
 * The request's "addrs". Nothing above INT64_MAX is a user address, nor
 * fits in JSON's integers here: 0 stands for it (no block holds page 0).
 */
static json_t *addrs_json(const uint64_t *addrs, size_t n)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; arr && i < n; i++)
		if (json_array_append_new(arr,
					  json_integer(addrs[i] > INT64_MAX
							       ? 0
							       : addrs[i]))) {
			json_decref(arr);
			return NULL;
		}
	return arr;
}

/* At most QUERY_MAX_ADDRS addresses in one request. */
static int lookup_once(const char *dir, pid_t pid, const uint64_t *addrs,
		       size_t n, struct ask_block *out, uint64_t deadline)
{
	json_t *arr = addrs_json(addrs, n), *reply = NULL, *blocks;
	size_t i;
	int err = ask(dir, pid,
		      arr ? json_pack("{s:s, s:i, s:o}", "op", "lookup", "pid",
				      pid, "addrs", arr)
			  : NULL,
		      deadline, &reply);

	blocks = json_object_get(reply, "blocks");
	if (!err && json_array_size(blocks) != n)
		err = -EPROTO;
	for (i = 0; !err && i < n; i++)
		err = parse_block(json_array_get(blocks, i), addrs[i], &out[i]);
	json_decref(reply);
	return err;
}

int ask__lookup(const char *dir, pid_t pid, const uint64_t *addrs, size_t n,
		struct ask_block *out)
{
	uint64_t deadline = now_monotonic_ns() + ASK_TIMEOUT_NS;
	size_t i, chunk;
	int err = 0;

	memset(out, 0, n * sizeof(*out)); /* nothing found, whatever fails */
	for (i = 0; !err && i < n; i += chunk) {
		chunk = n - i < QUERY_MAX_ADDRS ? n - i : QUERY_MAX_ADDRS;
		err = lookup_once(dir, pid, addrs + i, chunk, out + i,
				  deadline);
	}
	return err;
}
