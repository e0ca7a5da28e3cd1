// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "server/ask.h"
#include "server/query.h"
#include "unit.h"

/*
 * A fake agent: a listener in a temp dir whose thread serves nconn
 * connections in turn, reading each request line and sending what
 * reply() makes of it (NULL: nothing, until fake_stop()).
 */
struct fake {
	char dir[64], path[108];
	int lfd, quit[2];
	pthread_t thread;
	int nconn, served;
	char *(*reply)(struct fake *f, int i, const char *request);
	const char *canned; /* for canned_reply */
	char *requests[4]; /* the first four requests, as sent */
};

/* The request line, up to its '\n' (blocking: the client sends it). */
static char *read_request(int fd)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	ssize_t got;

	while (buf && (got = recv(fd, buf + len, cap - len - 1, 0)) > 0) {
		len += got;
		if (memchr(buf + len - got, '\n', got))
			break;
		if (len + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	cr_assert_not_null(buf);
	buf[len] = '\0';
	return buf;
}

/* Send all of s and its '\n'; a silent fake waits to be stopped. */
static void send_reply(struct fake *f, int fd, char *s)
{
	char c;

	if (!s) {
		cr_assert_eq(read(f->quit[0], &c, 1), 1);
		return;
	}
	cr_assert_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
	free(s);
}

static void *serve(void *arg)
{
	struct fake *f = arg;
	int i;

	for (i = 0; i < f->nconn; i++) {
		int fd = accept(f->lfd, NULL, NULL);
		char *req;

		if (fd < 0)
			break;
		req = read_request(fd);
		send_reply(f, fd, f->reply(f, i, req));
		close(fd);
		if (i < 4)
			f->requests[i] = req;
		else
			free(req);
		f->served++;
	}
	return NULL;
}

static char *canned_reply(struct fake *f, int i, const char *request)
{
	(void)i;
	(void)request;
	return f->canned ? strdup(f->canned) : NULL;
}

/* A temp dir with agent.sock listening (listen false: bound only). */
static void fake_bind(struct fake *f, bool listening)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	snprintf(f->dir, sizeof(f->dir), "/tmp/memprof-ask-XXXXXX");
	cr_assert_not_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, QUERY_SOCKET);
	strcpy(a.sun_path, f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(f->lfd, 0);
	cr_assert_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	if (listening)
		cr_assert_eq(listen(f->lfd, 4), 0);
}

static void fake_start(struct fake *f, int nconn,
		       char *(*reply)(struct fake *, int, const char *))
{
	f->nconn = nconn;
	f->reply = reply;
	cr_assert_eq(pipe(f->quit), 0);
	fake_bind(f, true);
	cr_assert_eq(pthread_create(&f->thread, NULL, serve, f), 0);
}

/* Release a silent fake, wait for its thread, remove its files. */
static void fake_stop(struct fake *f)
{
	int i;

	cr_assert_eq(write(f->quit[1], "q", 1), 1);
	shutdown(f->lfd, SHUT_RDWR); /* an accept still waiting returns */
	pthread_join(f->thread, NULL);
	close(f->lfd);
	close(f->quit[0]);
	close(f->quit[1]);
	unlink(f->path);
	rmdir(f->dir);
	for (i = 0; i < 4; i++)
		free(f->requests[i]);
}

/* The request i the fake read, as JSON. */
static json_t *request_of(struct fake *f, int i)
{
	json_t *j = json_loads(f->requests[i], 0, NULL);

	cr_assert_not_null(j, "request %d: %s", i, f->requests[i]);
	return j;
}

/* ---- replies parsed ------------------------------------------------------ */

Test(ask, live, .timeout = 10)
{
	struct fake f = { .canned = "{\"pid\":42,\"live_bytes\":123456789012,"
				    "\"live_count\":3,\"peak_bytes\":1}\n" };
	uint64_t live = 0;
	json_t *req;

	fake_start(&f, 1, canned_reply);
	cr_assert_eq(ask__live(f.dir, 42, &live), 0);
	cr_assert_eq(live, 123456789012ULL);
	fake_stop(&f);
	req = request_of(&f, 0);
	cr_assert_str_eq(json_string_value(json_object_get(req, "op")), "live");
	cr_assert_eq(json_integer_value(json_object_get(req, "pid")), 42);
	json_decref(req);
}

static const char LOOKUP_REPLY[] =
	"{\"pid\":42,\"live_bytes\":9,\"blocks\":["
	"{\"addr\":4112,\"start\":4096,\"size\":256,\"kind\":\"block\","
	"\"cell\":\"In [3]\",\"file\":\"/x/y.py\",\"line\":3,"
	"\"function\":\"f\",\"where\":\"y.py:3 f\"},"
	"null,"
	"{\"addr\":131073,\"start\":131072,\"size\":16384,\"kind\":\"mapping\","
	"\"cell\":null,\"file\":null,\"line\":null,\"function\":null,"
	"\"where\":\"libc.so.6 mmap\"},"
	"null]}\n";

Test(ask, lookup_found_and_not, .timeout = 10)
{
	const uint64_t addrs[] = { 0x1010, 0x5000, 0x20001, UINT64_MAX };
	struct fake f = { .canned = LOOKUP_REPLY };
	struct ask_block out[4];
	json_t *req, *sent;

	memset(out, 0xff, sizeof(out));
	fake_start(&f, 1, canned_reply);
	cr_assert_eq(ask__lookup(f.dir, 42, addrs, 4, out), 0);
	fake_stop(&f);
	cr_assert(out[0].found && !out[0].mapping);
	cr_assert_eq(out[0].start, 0x1000);
	cr_assert_eq(out[0].size, 256);
	cr_assert_str_eq(out[0].cell, "In [3]");
	cr_assert_str_eq(out[0].where, "y.py:3 f");
	cr_assert(!out[1].found);
	cr_assert_str_eq(out[1].cell, "");
	cr_assert(out[2].found && out[2].mapping);
	cr_assert_eq(out[2].start, 0x20000);
	cr_assert_eq(out[2].size, 0x4000);
	cr_assert_str_eq(out[2].cell, "");
	cr_assert_str_eq(out[2].where, "libc.so.6 mmap");
	cr_assert(!out[3].found);
	req = request_of(&f, 0);
	sent = json_object_get(req, "addrs");
	cr_assert_str_eq(json_string_value(json_object_get(req, "op")), "looku"
									"p");
	cr_assert_eq(json_integer_value(json_object_get(req, "pid")), 42);
	cr_assert_eq(json_array_size(sent), 4);
	cr_assert_eq(json_integer_value(json_array_get(sent, 0)), 0x1010);
	cr_assert_eq(json_integer_value(json_array_get(sent, 2)), 0x20001);
	/* Not a user address: sent as 0, which no block holds. */
	cr_assert_eq(json_integer_value(json_array_get(sent, 3)), 0);
	json_decref(req);
}

/* Every address its own 1-byte block; which request it came in, in "cell". */
static char *echo_blocks(struct fake *f, int i, const char *request)
{
	json_t *req = json_loads(request, 0, NULL), *blocks = json_array();
	json_t *addrs = json_object_get(req, "addrs"), *a, *reply;
	char cell[32];
	size_t k;
	char *s;

	(void)f;
	snprintf(cell, sizeof(cell), "In [%d]", i);
	json_array_foreach(addrs, k, a) json_array_append_new(
		blocks, json_pack("{s:O, s:O, s:i, s:s, s:s, s:s}", "addr", a,
				  "start", a, "size", 1, "kind", "block",
				  "cell", cell, "where", "w"));
	reply = json_pack("{s:O, s:i, s:o}", "pid", json_object_get(req, "pid"),
			  "live_bytes", 1, "blocks", blocks);
	s = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	json_decref(req);
	cr_assert_not_null(s);
	s = realloc(s, strlen(s) + 2);
	strcat(s, "\n");
	return s;
}

/* More than QUERY_MAX_ADDRS addresses: two requests, in order. */
Test(ask, lookup_in_several_requests, .timeout = 20)
{
	size_t i, n = QUERY_MAX_ADDRS + 3;
	uint64_t *addrs = malloc(n * sizeof(*addrs));
	struct ask_block *out = calloc(n, sizeof(*out));
	struct fake f = { 0 };

	cr_assert(addrs && out);
	for (i = 0; i < n; i++)
		addrs[i] = 0x10000 + i * 16;
	fake_start(&f, 2, echo_blocks);
	cr_assert_eq(ask__lookup(f.dir, 7, addrs, n, out), 0);
	fake_stop(&f);
	cr_assert_eq(f.served, 2);
	for (i = 0; i < n; i++) {
		cr_assert(out[i].found && out[i].start == addrs[i],
			  "%zu: 0x%llx", i, (unsigned long long)out[i].start);
		cr_assert_str_eq(out[i].cell,
				 i < QUERY_MAX_ADDRS ? "In [0]" : "In [1]");
	}
	free(addrs);
	free(out);
}

/* With no dir, $MEMPROF_BPF_STATE_DIR says where the agent is. */
Test(ask, dir_from_environment, .timeout = 10)
{
	struct fake f = { .canned = "{\"pid\":42,\"live_bytes\":5}\n" };
	uint64_t live = 0;

	fake_start(&f, 1, canned_reply);
	setenv("MEMPROF_BPF_STATE_DIR", f.dir, 1);
	cr_assert_eq(ask__live(NULL, 42, &live), 0);
	cr_assert_eq(live, 5);
	fake_stop(&f);
}

/* ---- errors -------------------------------------------------------------- */

/* ask__live's result against a fake that says reply. */
static int live_against(const char *reply)
{
	struct fake f = { .canned = reply };
	uint64_t live = 0;
	int rc;

	fake_start(&f, 1, canned_reply);
	rc = ask__live(f.dir, 42, &live);
	fake_stop(&f);
	return rc;
}

/* ask__lookup's result (one address, 0x1010) against reply. */
static int lookup_against(const char *reply)
{
	const uint64_t addr = 0x1010;
	struct fake f = { .canned = reply };
	struct ask_block out;
	int rc;

	fake_start(&f, 1, canned_reply);
	rc = ask__lookup(f.dir, 42, &addr, 1, &out);
	fake_stop(&f);
	return rc;
}

Test(ask, not_traced, .timeout = 10)
{
	cr_assert_eq(live_against("{\"error\":\"not traced\",\"pid\":42}\n"),
		     -ESRCH);
	cr_assert_eq(lookup_against("{\"error\":\"not traced\",\"pid\":42}\n"),
		     -ESRCH);
	/* About us, not 42: the agent refused this process. */
	cr_assert_eq(live_against("{\"error\":\"not traced\",\"pid\":9}\n"),
		     -EACCES);
}

Test(ask, malformed_replies, .timeout = 20)
{
	cr_assert_eq(live_against("not json\n"), -EPROTO);
	cr_assert_eq(live_against("[1]\n"), -EPROTO);
	cr_assert_eq(live_against(""), -EPROTO); /* closed, nothing said */
	cr_assert_eq(live_against("{\"pid\":42}\n"), -EPROTO);
	cr_assert_eq(live_against("{\"pid\":42,\"live_bytes\":-1}\n"), -EPROTO);
	cr_assert_eq(live_against("{\"pid\":43,\"live_bytes\":1}\n"), -EPROTO);
	cr_assert_eq(live_against("{\"error\":\"a root client must name a "
				  "\\\"pid\\\"\"}\n"),
		     -EPROTO);
	cr_assert_eq(lookup_against("{\"pid\":42,\"blocks\":[]}\n"), -EPROTO);
	cr_assert_eq(lookup_against("{\"pid\":42,\"blocks\":[null,null]}\n"),
		     -EPROTO);
	cr_assert_eq(lookup_against("{\"pid\":42,\"blocks\":[7]}\n"), -EPROTO);
	/* A block that does not hold the address asked about. */
	cr_assert_eq(lookup_against("{\"pid\":42,\"blocks\":[{\"start\":4096,"
				    "\"size\":16,\"kind\":\"block\","
				    "\"cell\":null,\"where\":\"w\"}]}\n"),
		     -EPROTO);
	cr_assert_eq(lookup_against("{\"pid\":42,\"blocks\":[{\"start\":4096,"
				    "\"size\":256,\"kind\":\"block\","
				    "\"cell\":3,\"where\":\"w\"}]}\n"),
		     -EPROTO);
	/* No '\n' but closed: the reply is all there is. */
	cr_assert_eq(live_against("{\"pid\":42,\"live_bytes\":1}"), 0);
}

Test(ask, no_agent, .timeout = 10)
{
	struct fake f = { 0 };
	uint64_t live;

	/* No socket at all. */
	cr_assert_eq(ask__live("/nonexistent/memprof-ask", 42, &live), -ENOENT);
	/* A socket file nobody listens on (an agent that died). */
	fake_bind(&f, false);
	cr_assert_eq(ask__live(f.dir, 42, &live), -ENOENT);
	close(f.lfd);
	unlink(f.path);
	rmdir(f.dir);
}

/* A fake that reads the request and never answers: the bound holds. */
Test(ask, silent_agent_times_out, .timeout = 10)
{
	const uint64_t addr = 0x1010;
	struct fake f = { .canned = NULL };
	struct ask_block out;
	uint64_t t0, took;

	fake_start(&f, 1, canned_reply);
	t0 = now_monotonic_ns();
	cr_assert_eq(ask__lookup(f.dir, 42, &addr, 1, &out), -ETIMEDOUT);
	took = now_monotonic_ns() - t0;
	fake_stop(&f);
	cr_assert(took >= ASK_TIMEOUT_NS - 100000000ULL &&
			  took < ASK_TIMEOUT_NS + 500000000ULL,
		  "took %llu ns", (unsigned long long)took);
}
