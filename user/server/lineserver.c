// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "lib/log.h"
#include "lib/loop.h"
#include "lineserver.h"

#define ACCEPTS_PER_TURN 4 /* a flood of clients must not starve events */
#define FIRST_BUFFER (64u << 10)

struct client {
	struct line_server *s;
	struct client *next, *prev;
	int fd;
	long tag; /* the owner's, from accept */
	int64_t timer; /* its deadline: reading, then writing */
	char *in; /* the request so far */
	size_t in_len, in_cap;
	char *out; /* the reply and its '\n'; NULL while reading */
	size_t out_len, out_off;
};

struct line_server {
	struct loop *loop;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev; /* the socket file we made: only ours is removed */
	ino_t ino;
	struct line_server_limits lim;
	const struct line_server_ops *ops;
	void *ctx;
	struct client *clients;
	int nclients;
	bool full; /* max_clients reached: the listener is not watched */
};

/* ---- clients ------------------------------------------------------------ */

/* Close and forget c; a full server listens again. */
static void drop(struct client *c)
{
	struct line_server *s = c->s;

	loop__del_fd(s->loop, c->fd);
	loop__del_timer(s->loop, c->timer);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->in);
	free(c->out);
	free(c);
	s->nclients--;
	if (s->full && !loop__set_fd(s->loop, s->fd, LOOP_IN))
		s->full = false;
}

/*
 * Send what the socket takes now; the rest waits for LOOP_OUT. All sent
 * (or the client gone): the connection is done.
 */
static void flush(struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t sent = send(c->fd, c->out + c->out_off,
				    c->out_len - c->out_off,
				    MSG_NOSIGNAL | MSG_DONTWAIT);

		if (sent < 0 && errno == EINTR)
			continue;
		if (sent < 0 && errno == EAGAIN) {
			if (loop__set_fd(c->s->loop, c->fd, LOOP_OUT))
				break;
			return;
		}
		if (sent < 0)
			break;
		c->out_off += sent;
	}
	drop(c);
}

static void on_timeout(struct loop *l, void *data);

/* The reply, its '\n' after it, within write_ns; reading is over. */
static void respond(struct client *c, json_t *reply)
{
	struct line_server *s = c->s;
	char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;

	json_decref(reply);
	if (!text)
		text = strdup("{\"error\": \"out of memory\"}");
	free(c->in);
	c->in = NULL;
	loop__del_timer(s->loop, c->timer);
	c->timer = loop__add_timer(s->loop, s->lim.write_ns, 0, on_timeout, c);
	if (!text || c->timer < 0 || loop__set_fd(s->loop, c->fd, 0)) {
		free(text);
		drop(c);
		return;
	}
	c->out_len = strlen(text) + 1;
	text[c->out_len - 1] = '\n'; /* over the NUL: the length is known */
	c->out = text;
	flush(c);
}

/* The owner's answer to a failed read: why, in its words. */
static void refuse(struct client *c, const char *why)
{
	respond(c, c->s->ops->answer(c->s->ctx, c->tag, NULL, 0, why));
}

/* Deadline: a request not sent in time is told so, a reply not read dropped. */
static void on_timeout(struct loop *l, void *data)
{
	struct client *c = data;

	(void)l;
	c->timer = 0; /* fired, once */
	if (c->out)
		drop(c);
	else
		refuse(c, "reading the request: timed out");
}

/* Room for at least one more byte, up to the line limit and its '\n'. */
static int grow(struct client *c, size_t max_line)
{
	size_t cap = c->in_cap ? c->in_cap * 2 : FIRST_BUFFER;
	char *p;

	if (c->in_cap > max_line)
		return -E2BIG;
	if (cap > max_line + 1)
		cap = max_line + 1;
	p = realloc(c->in, cap);
	if (!p)
		return -ENOMEM;
	c->in = p;
	c->in_cap = cap;
	return 0;
}

/* The request is in: the owner's answer goes out. */
static void answer(struct client *c, size_t len)
{
	struct line_server *s = c->s;

	respond(c, s->ops->answer(s->ctx, c->tag, c->in, len, NULL));
}

/* Say why no request could be read (rc: -errno). */
static void read_failed(struct client *c, int rc)
{
	char why[160];

	if (rc == -E2BIG)
		snprintf(why, sizeof(why), "request longer than %zu bytes",
			 c->s->lim.max_line);
	else
		snprintf(why, sizeof(why), "reading the request: %s",
			 rc == -ENODATA ? "nothing sent" : strerror(-rc));
	refuse(c, why);
}

/*
 * Take what the client sent: a '\n' or the end of its sending completes
 * the request, nothing more waits for the next LOOP_IN.
 */
static void read_request(struct client *c)
{
	for (;;) {
		ssize_t got;
		char *nl;
		int rc = 0;

		if (c->in_len == c->in_cap)
			rc = grow(c, c->s->lim.max_line);
		if (rc) {
			read_failed(c, rc);
			return;
		}
		got = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len,
			   MSG_DONTWAIT);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EAGAIN)
			return;
		if (got == 0 && c->in_len) {
			answer(c, c->in_len); /* no '\n', but all there is */
			return;
		}
		if (got <= 0) {
			read_failed(c, got < 0 ? -errno : -ENODATA);
			return;
		}
		nl = memchr(c->in + c->in_len, '\n', got);
		c->in_len += got;
		if (nl) {
			answer(c, nl - c->in);
			return;
		}
	}
}

/* Readable while reading, writable while a reply waits, or hung up. */
static void on_client(struct loop *l, int fd, unsigned events, void *data)
{
	struct client *c = data;

	(void)l;
	(void)fd;
	(void)events;
	if (c->out)
		flush(c);
	else
		read_request(c);
}

/*
 * A new connection joins the loop with its read deadline; the owner may
 * refuse it at once (then nothing is read).
 */
static void admit(struct line_server *s, int fd)
{
	struct client *c = calloc(1, sizeof(*c));
	json_t *refusal;

	if (!c || loop__add_fd(s->loop, fd, 0, on_client, c)) {
		free(c);
		close(fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	c->next = s->clients;
	if (c->next)
		c->next->prev = c;
	s->clients = c;
	s->nclients++;
	c->timer = loop__add_timer(s->loop, s->lim.read_ns, 0, on_timeout, c);
	refusal = c->timer < 0 ? NULL : s->ops->accept(s->ctx, fd, &c->tag);
	if (refusal)
		respond(c, refusal);
	else if (c->timer < 0 || loop__set_fd(s->loop, fd, LOOP_IN))
		drop(c);
}

/* Clients are waiting: take a few, as many as there is room for. */
static void on_listen(struct loop *l, int lfd, unsigned events, void *data)
{
	struct line_server *s = data;
	int i, fd;

	(void)events;
	for (i = 0; i < ACCEPTS_PER_TURN; i++) {
		if (s->nclients >= s->lim.max_clients) {
			s->full = !loop__set_fd(l, lfd, 0);
			return;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_debug("%s: %s", s->path, strerror(errno));
			return;
		}
		admit(s, fd);
	}
}

/* ---- the socket ---------------------------------------------------------- */

/* Bind, open to every user (answers are per caller), listen. */
static int listen_on(struct line_server *s, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int err = 0;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	memcpy(s->path, addr.sun_path, sizeof(s->path));
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;
	unlink(s->path); /* left by an agent that died */
	if (bind(s->fd, (struct sockaddr *)&addr, sizeof(addr)))
		err = -errno;
	else if (chmod(s->path, 0666) || listen(s->fd, 16) ||
		 lstat(s->path, &st))
		err = -errno, unlink(s->path);
	if (err) {
		close(s->fd);
		return err;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 0;
}

int line_server__start(struct loop *l, const char *path,
		       const struct line_server_limits *lim,
		       const struct line_server_ops *ops, void *ctx,
		       struct line_server **out)
{
	struct line_server *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	*s = (struct line_server){
		.loop = l, .lim = *lim, .ops = ops, .ctx = ctx
	};
	err = listen_on(s, path);
	if (!err) {
		err = loop__add_fd(l, s->fd, LOOP_IN, on_listen, s);
		if (err) {
			close(s->fd);
			unlink(s->path);
		}
	}
	if (err) {
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

void line_server__stop(struct line_server *s)
{
	struct stat st;

	if (!s)
		return;
	while (s->clients)
		drop(s->clients);
	loop__del_fd(s->loop, s->fd);
	close(s->fd);
	if (!lstat(s->path, &st) && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	free(s);
}
