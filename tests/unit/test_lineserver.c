// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "lib/loop.h"
#include "server/lineserver.h"
#include "unit.h"

#define MS 1000000ULL

/* The owner: refuses all when told to, echoes lines, says why not. */
struct owner {
	int accepted;
	bool refuse;
	size_t reply_bytes; /* > 0: a reply this big, for slow readers */
};

static json_t *accept_client(void *ctx, int fd, long *tag)
{
	struct owner *o = ctx;

	cr_assert_geq(fd, 0);
	*tag = ++o->accepted;
	return o->refuse ? json_pack("{s:s}", "error", "refused") : NULL;
}

static json_t *answer_line(void *ctx, long tag, const char *line, size_t len,
			   const char *err)
{
	struct owner *o = ctx;
	json_t *r;
	char *big;

	if (!line)
		return json_pack("{s:s, s:i}", "error", err, "tag", (int)tag);
	if (!o->reply_bytes)
		return json_pack("{s:s%, s:i}", "line", line, len, "tag",
				 (int)tag);
	big = malloc(o->reply_bytes);
	cr_assert_not_null(big);
	memset(big, 'x', o->reply_bytes);
	r = json_pack("{s:s%}", "big", big, o->reply_bytes);
	free(big);
	return r;
}

static const struct line_server_ops ops = { accept_client, answer_line };

struct fixture {
	char dir[64], path[128];
	struct loop *l;
	struct line_server *s;
	struct owner o;
};

static void start(struct fixture *f, const struct line_server_limits *lim)
{
	strcpy(f->dir, "/tmp/memprof-lineserver-XXXXXX");
	cr_assert_not_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/test.sock", f->dir);
	f->l = loop__new();
	cr_assert_not_null(f->l);
	cr_assert_eq(line_server__start(f->l, f->path, lim, &ops, &f->o, &f->s),
		     0);
}

static void stop(struct fixture *f)
{
	line_server__stop(f->s);
	cr_assert_eq(access(f->path, F_OK), -1, "socket file left behind");
	loop__free(f->l);
	rmdir(f->dir);
}

static int connect_to(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	strcpy(addr.sun_path, path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0,
		     "%s", strerror(errno));
	return fd;
}

static void say(int fd, const char *s)
{
	cr_assert_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/*
 * Turn the loop until fd has a whole reply line (or max_ms pass: ""),
 * checking that no turn took long: nothing the server does may block.
 */
static const char *reply_of(struct fixture *f, int fd, int max_ms, char *buf,
			    size_t size)
{
	uint64_t end = now_monotonic_ns() + max_ms * MS;
	size_t n = 0;

	buf[0] = '\0';
	while (now_monotonic_ns() < end && !memchr(buf, '\n', n)) {
		uint64_t t0 = now_monotonic_ns();
		ssize_t got;

		cr_assert_geq(loop__run_once(f->l, 10), 0);
		cr_assert_lt(now_monotonic_ns() - t0, 400 * MS,
			     "a turn blocked");
		got = recv(fd, buf + n, size - 1 - n, MSG_DONTWAIT);
		if (got > 0)
			n += got;
		buf[n] = '\0';
	}
	return buf;
}

static const struct line_server_limits quick = {
	.max_line = 64,
	.read_ns = 500 * MS,
	.write_ns = 500 * MS,
	.max_clients = 4,
};

/* A client that sent half a line does not hold up another's answer. */
Test(lineserver, half_line_does_not_block_another, .timeout = 10)
{
	struct fixture f = { 0 };
	char buf[256];
	int slow, fast;
	uint64_t t0;

	start(&f, &quick);
	slow = connect_to(f.path);
	say(slow, "{\"op\": ");
	fast = connect_to(f.path);
	say(fast, "hello\nignored");
	t0 = now_monotonic_ns();
	cr_assert_str_eq(reply_of(&f, fast, 1000, buf, sizeof(buf)), "{\"line\""
								     ":\"hello"
								     "\","
								     "\"tag\":"
								     "2}\n");
	cr_assert_lt(now_monotonic_ns() - t0, 400 * MS);
	cr_assert_eq(recv(slow, buf, sizeof(buf), MSG_DONTWAIT), -1);
	/* The slow one is told, once its time is up. */
	cr_assert_str_eq(reply_of(&f, slow, 1000, buf, sizeof(buf)),
			 "{\"error\":\"reading the request: timed out\","
			 "\"tag\":1}\n");
	cr_assert_geq(now_monotonic_ns() - t0, 500 * MS);
	close(slow);
	close(fast);
	stop(&f);
}

/* A new client sends text (then ends its sending, if told): the reply. */
static const char *ask(struct fixture *f, const char *text, bool end, char *buf,
		       size_t size)
{
	int fd = connect_to(f->path);

	if (*text)
		say(fd, text);
	if (end)
		shutdown(fd, SHUT_WR);
	reply_of(f, fd, 1000, buf, size);
	close(fd);
	return buf;
}

/* Nothing, the end without '\n', too long, and exactly the limit. */
Test(lineserver, request_edges, .timeout = 10)
{
	static const char nothing[] = "{\"error\":\"reading the request: "
				      "nothing sent\",\"tag\":1}\n";
	static const char unended[] = "{\"line\":\"no newline\",\"tag\":2}\n";
	static const char too_long[] = "{\"error\":\"request longer than "
				       "64 bytes\",\"tag\":3}\n";
	struct fixture f = { 0 };
	char buf[256], line[80];

	start(&f, &quick);
	cr_assert_str_eq(ask(&f, "", true, buf, sizeof(buf)), nothing);
	cr_assert_str_eq(ask(&f, "no newline", true, buf, sizeof(buf)),
			 unended);
	memset(line, 'a', 65);
	line[65] = '\0';
	cr_assert_str_eq(ask(&f, line, false, buf, sizeof(buf)), too_long);
	line[64] = '\n';
	ask(&f, line, false, buf, sizeof(buf));
	cr_assert_eq(strlen(buf), strlen("{\"line\":\"\",\"tag\":4}\n") + 64,
		     "%s", buf);
	stop(&f);
}

/* A refused client hears so without sending anything. */
Test(lineserver, refusal_comes_first, .timeout = 10)
{
	struct fixture f = { 0 };
	char buf[256];

	f.o.refuse = true;
	start(&f, &quick);
	cr_assert_str_eq(ask(&f, "", false, buf, sizeof(buf)), "{\"error\":"
							       "\"refused\"}"
							       "\n");
	stop(&f);
}

/*
 * A client that does not read a big reply waits in its own buffer while
 * others are served, and is dropped when its time is up.
 */
Test(lineserver, stalled_reader_is_dropped, .timeout = 10)
{
	struct fixture f = { 0 };
	char buf[256];
	int stalled, other, n = 0;
	ssize_t got;

	f.o.reply_bytes = 4 << 20;
	start(&f, &quick);
	stalled = connect_to(f.path);
	say(stalled, "big\n");
	reply_of(&f, stalled, 50, buf, 2); /* turns, reads a byte */
	f.o.reply_bytes = 0;
	other = connect_to(f.path);
	say(other, "small\n");
	cr_assert_str_eq(reply_of(&f, other, 1000, buf, sizeof(buf)), "{\"line"
								      "\":"
								      "\"small"
								      "\","
								      "\"tag\":"
								      "2}\n");
	reply_of(&f, other, 600, buf, sizeof(buf)); /* past write_ns */
	/* What the socket held, then the end: not the whole reply. */
	while ((got = recv(stalled, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		n += got;
	cr_assert_eq(got, 0, "not closed: %zd (%s)", got, strerror(errno));
	cr_assert_lt(n, 4 << 20);
	close(stalled);
	close(other);
	stop(&f);
}

/* More clients than max_clients wait in the backlog, then are served. */
Test(lineserver, clients_beyond_the_limit_wait, .timeout = 10)
{
	struct line_server_limits two = quick;
	struct fixture f = { 0 };
	char buf[256];
	int fd[5], i;

	two.max_clients = 2;
	start(&f, &two);
	for (i = 0; i < 5; i++)
		fd[i] = connect_to(f.path);
	for (i = 4; i >= 0; i--)
		say(fd[i], "hi\n");
	for (i = 0; i < 5; i++) {
		reply_of(&f, fd[i], 1000, buf, sizeof(buf));
		cr_assert_eq(strncmp(buf, "{\"line\":\"hi\",\"tag\":", 19), 0,
			     "%d: %s", i, buf);
		close(fd[i]);
	}
	cr_assert_eq(f.o.accepted, 5);
	stop(&f);
}

/* A stale socket file is replaced; another file at stop is left alone. */
Test(lineserver, socket_file_is_ours_only, .timeout = 10)
{
	struct fixture f = { 0 };
	struct stat st;
	FILE *stale;

	strcpy(f.dir, "/tmp/memprof-lineserver-XXXXXX");
	cr_assert_not_null(mkdtemp(f.dir));
	snprintf(f.path, sizeof(f.path), "%s/test.sock", f.dir);
	stale = fopen(f.path, "w");
	cr_assert_not_null(stale);
	fclose(stale);
	f.l = loop__new();
	cr_assert_eq(line_server__start(f.l, f.path, &quick, &ops, &f.o, &f.s),
		     0);
	cr_assert_eq(lstat(f.path, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0666);
	unlink(f.path);
	stale = fopen(f.path, "w"); /* another agent's, say */
	fclose(stale);
	line_server__stop(f.s);
	cr_assert_eq(access(f.path, F_OK), 0);
	unlink(f.path);
	loop__free(f.l);
	rmdir(f.dir);
}
