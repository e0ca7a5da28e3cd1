// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include "agent.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "memprof.skel.h"
#include "output/publish.h"
#include "lineserver.h"
#include "query.h"
#include "recorder/recording.h"
#include "output/snapshot.h"

#define READ_NS 1000000000ULL /* a whole request, however it trickles */
#define WRITE_NS 2000000000ULL /* a whole reply */
#define MAX_CLIENTS 16 /* at once, each with up to QUERY_MAX_LINE read */
#define DRAIN_NS 50000000ULL /* for records reserved but not committed */
/*
 * A client's tag: a traced caller's pid, or minus a root client's (which
 * names the process in its requests).
 */
#define ROOT_TAG(pid) (-(long)(pid))
#define IS_ROOT_TAG(tag) ((tag) < 0)

struct query_server {
	struct line_server *lines;
	/* The event ring's positions, mapped read-only (NULL: unknown). */
	const unsigned long *consumer, *producer;
	size_t page;
};

/* ---- requests ---------------------------------------------------------- */

void query__request_free(struct query_request *req)
{
	free(req->addrs);
	memset(req, 0, sizeof(*req));
}

/* "addrs": non-negative integers, at most QUERY_MAX_ADDRS of them. */
static int parse_addrs(json_t *arr, struct query_request *req, char *err,
		       size_t errlen)
{
	size_t i, n = json_array_size(arr);

	if (!json_is_array(arr)) {
		snprintf(err, errlen, "lookup needs \"addrs\": a list");
		return -1;
	}
	if (n > QUERY_MAX_ADDRS) {
		snprintf(err, errlen, "too many addresses (%zu, at most %d)", n,
			 QUERY_MAX_ADDRS);
		return -1;
	}
	req->addrs = malloc((n ? n : 1) * sizeof(*req->addrs));
	if (!req->addrs) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		json_t *v = json_array_get(arr, i);

		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			snprintf(err, errlen,
				 "addrs[%zu] is not a non-negative integer", i);
			return -1;
		}
		req->addrs[i] = json_integer_value(v);
	}
	req->naddrs = n;
	return 0;
}

/*
 * "pid": a positive int, or absent (0). Only a root client's is used
 * (answer()): a traced caller is always answered about itself.
 */
static int parse_pid(json_t *v, struct query_request *req, char *err,
		     size_t errlen)
{
	json_int_t pid = json_integer_value(v);

	if (!v)
		return 0;
	if (!json_is_integer(v) || pid <= 0 || pid > INT32_MAX) {
		snprintf(err, errlen, "\"pid\" is not a positive integer");
		return -1;
	}
	req->pid = pid;
	return 0;
}

/* "op" and, for a lookup, "addrs"; -1 with the reason in err. */
static int parse_op(json_t *doc, struct query_request *req, char *err,
		    size_t errlen)
{
	const char *op = json_string_value(json_object_get(doc, "op"));

	if (!op) {
		snprintf(err, errlen,
			 "no \"op\" (\"live\", \"cells\" or \"lookup\")");
		return -1;
	}
	if (!strcmp(op, "live")) {
		req->op = QUERY_LIVE;
		return 0;
	}
	if (!strcmp(op, "cells")) {
		req->op = QUERY_CELLS;
		return 0;
	}
	if (!strcmp(op, "lookup")) {
		req->op = QUERY_LOOKUP;
		return parse_addrs(json_object_get(doc, "addrs"), req, err,
				   errlen);
	}
	snprintf(err, errlen, "unknown op \"%.40s\"", op);
	return -1;
}

int query__parse(const char *line, size_t len, struct query_request *req,
		 char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc;
	int rc = -1;

	memset(req, 0, sizeof(*req));
	doc = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		snprintf(err, errlen, "bad JSON: %s", jerr.text);
		return -1;
	}
	if (!json_is_object(doc))
		snprintf(err, errlen, "a request is a JSON object");
	else if (!parse_pid(json_object_get(doc, "pid"), req, err, errlen))
		rc = parse_op(doc, req, err, errlen);
	json_decref(doc);
	if (rc)
		query__request_free(req);
	return rc;
}

/* ---- containment --------------------------------------------------------- */

/* An address and its place in the request. */
struct keyed {
	uint64_t addr;
	size_t i;
};

/*
 * The request's addresses sorted, plain in addr[] for the bisections (a
 * million of them per request: they must not mispredict), with their
 * places in the request in k[].
 */
struct sorted_addrs {
	struct keyed *k;
	uint64_t *addr;
	size_t n;
};

static int by_addr(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int sort_addrs(struct sorted_addrs *s, const uint64_t *addrs, size_t n)
{
	size_t i;

	s->n = n;
	s->k = malloc(n * sizeof(*s->k));
	s->addr = malloc(n * sizeof(*s->addr));
	if (!s->k || !s->addr)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		s->k[i] = (struct keyed){ addrs[i], i };
	qsort(s->k, n, sizeof(*s->k), by_addr);
	for (i = 0; i < n; i++)
		s->addr[i] = s->k[i].addr;
	return 0;
}

/* Index of the first sorted address at or above addr (n: none). */
static size_t lower_bound(const struct sorted_addrs *s, uint64_t addr)
{
	const uint64_t *base = s->addr;
	size_t len = s->n;

	while (len > 1) { /* the answer stays in [base, base + len] */
		size_t half = len / 2;

		base += (size_t)(base[half - 1] < addr) * half;
		len -= half;
	}
	return (base - s->addr) + (*base < addr);
}

/*
 * Give block [start, start + size) the sorted addresses inside it. Blocks
 * are disjoint unless a free was lost; then the nearest start wins.
 */
static void cover(const struct sorted_addrs *s, const struct u64map_entry *b,
		  struct query_hit *out)
{
	size_t j;

	for (j = lower_bound(s, b->key);
	     j < s->n && s->k[j].addr - b->key < b->val; j++) {
		struct query_hit *h = &out[s->k[j].i];

		if (h->kind == QUERY_NONE || b->key > h->start)
			*h = (struct query_hit){ b->key, b->val, b->tag,
						 QUERY_BLOCK };
	}
}

/*
 * One pass over the live blocks, a bisection of the sorted addresses for
 * each: no sorted copy of a million blocks is made per request.
 */
static void cover_blocks(const struct u64map *t, const struct sorted_addrs *s,
			 struct query_hit *out)
{
	const struct u64map_entry *b;
	uint64_t lo = s->k[0].addr, hi = s->k[s->n - 1].addr;

	u64map__for_each(t, b)
	{
		if (b->key > hi || (b->key < lo && lo - b->key >= b->val))
			continue;
		cover(s, b, out);
	}
}

/* Regions are sorted and disjoint: merge them with the sorted addresses. */
static void cover_mappings(const struct regions *r,
			   const struct sorted_addrs *s, struct query_hit *out)
{
	size_t j = 0, m = 0;

	while (j < s->n && m < r->len) {
		const struct region *g = &r->v[m];
		struct query_hit *h = &out[s->k[j].i];

		if (s->k[j].addr < g->start) {
			j++;
		} else if (s->k[j].addr >= g->end) {
			m++;
		} else {
			if (h->kind == QUERY_NONE)
				*h = (struct query_hit){ g->start,
							 g->end - g->start,
							 g->site,
							 QUERY_MAPPING };
			j++;
		}
	}
}

/*
 * The census's blocks (sorted, apart from the table): a bisection per
 * address not found in the table.
 */
static void cover_before(const struct before *b, const uint64_t *addrs,
			 size_t n, struct query_hit *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct census_block *c;

		if (out[i].kind != QUERY_NONE ||
		    !(c = before__containing(b, addrs[i])))
			continue;
		out[i] = (struct query_hit){ c->addr, census_block__size(c),
					     b->site[census_block__kind(c)],
					     QUERY_BLOCK };
	}
}

int query__contain(const struct heap *h, const uint64_t *addrs, size_t n,
		   struct query_hit *out)
{
	struct sorted_addrs s;
	int err = 0;

	memset(out, 0, n * sizeof(*out));
	if (!n)
		return 0;
	err = sort_addrs(&s, addrs, n);
	if (!err) {
		cover_blocks(&h->blocks, &s, out);
		cover_mappings(&h->maps, &s, out);
		cover_before(&h->before, addrs, n, out);
	}
	free(s.k);
	free(s.addr);
	return err;
}

/* ---- replies ----------------------------------------------------------- */

json_t *query__error_reply(const char *msg, pid_t pid)
{
	json_t *o = json_pack("{s:s}", "error", msg);

	if (o && pid > 0)
		json_object_set_new(o, "pid", json_integer(pid));
	return o;
}

json_t *query__live_reply(const struct tracee *t)
{
	return json_pack("{s:i, s:I, s:I, s:I}", "pid", (int)t->pid,
			 "live_bytes", (json_int_t)t->heap.live_bytes,
			 "live_count", (json_int_t)t->heap.live_count,
			 "peak_bytes", (json_int_t)t->heap.peak_bytes);
}

/*
 * What every address in a site's blocks shares: the cell, the innermost
 * Python frame (file, line, function; null without one) and the "where"
 * that report prints for the stack, all from the site's typed frames.
 */
static json_t *site_desc(const struct tracee *t, uint32_t site)
{
	const struct snap_meta m = { .sites = &t->sites, .cells = &t->cells };
	struct site_frame f[SITE_MAX_FRAMES];
	size_t n = sites__frames(&t->sites, &t->py, site, f, SITE_MAX_FRAMES);
	const struct site_frame *py = site_frame__leaf_python(f, n);
	char where[512];

	if (py && (py->kind != FRAME_PYTHON || !py->file))
		py = NULL; /* a marker such as "[native thread]" */
	site_frame__where(f, n, where, sizeof(where));
	return json_pack("{s:o, s:s?, s:o, s:s?, s:s}", "cell",
			 snapshot__site_cell(&m, site), "file",
			 py ? py->file : NULL, "line",
			 py ? json_integer(py->line) : json_null(), "function",
			 py ? py->function : NULL, "where", where);
}

/* One address's entry; descs caches each site's description. */
static json_t *block_json(const struct tracee *t, uint64_t addr,
			  const struct query_hit *hit, json_t **descs)
{
	bool cached = hit->site < t->heap.nsites;
	json_t *desc = cached && descs[hit->site] ? descs[hit->site]
						  : site_desc(t, hit->site);
	json_t *o = json_pack("{s:I, s:I, s:I, s:s}", "addr", (json_int_t)addr,
			      "start", (json_int_t)hit->start, "size",
			      (json_int_t)hit->size, "kind",
			      hit->kind == QUERY_BLOCK ? "block" : "mapping");

	if (o && desc)
		json_object_update(o, desc);
	if (cached)
		descs[hit->site] = desc;
	else
		json_decref(desc);
	return o;
}

static json_t *blocks_json(const struct tracee *t,
			   const struct query_request *req,
			   const struct query_hit *hits)
{
	json_t **descs = calloc(t->heap.nsites + 1, sizeof(*descs));
	json_t *arr = json_array();
	size_t i;

	if (!descs || !arr) {
		free(descs);
		json_decref(arr);
		return NULL;
	}
	for (i = 0; i < req->naddrs; i++)
		json_array_append_new(arr,
				      hits[i].kind == QUERY_NONE
					      ? json_null()
					      : block_json(t, req->addrs[i],
							   &hits[i], descs));
	for (i = 0; i < t->heap.nsites; i++)
		json_decref(descs[i]);
	free(descs);
	return arr;
}

json_t *query__lookup_reply(const struct tracee *t,
			    const struct query_request *req)
{
	struct query_hit *hits =
		malloc((req->naddrs ? req->naddrs : 1) * sizeof(*hits));
	json_t *blocks = NULL;

	if (hits && !query__contain(&t->heap, req->addrs, req->naddrs, hits))
		blocks = blocks_json(t, req, hits);
	free(hits);
	if (!blocks)
		return NULL;
	return json_pack("{s:i, s:I, s:o}", "pid", (int)t->pid, "live_bytes",
			 (json_int_t)t->heap.live_bytes, "blocks", blocks);
}

/* ---- the socket ---------------------------------------------------------- */

/*
 * The ring's consumer and producer pages (the first two of the map),
 * read-only, to know how far "everything queued before now" reaches.
 */
static void map_positions(struct query_server *s, int ring_fd)
{
	void *p;

	s->page = sysconf(_SC_PAGESIZE);
	p = mmap(NULL, s->page, PROT_READ, MAP_SHARED, ring_fd, 0);
	s->consumer = p == MAP_FAILED ? NULL : p;
	p = mmap(NULL, s->page, PROT_READ, MAP_SHARED, ring_fd, s->page);
	s->producer = p == MAP_FAILED ? NULL : p;
	if (!s->consumer || !s->producer)
		log_debug("event ring positions: %s", strerror(errno));
}

/* The real uid in /proc/PID/status (the first of the "Uid:" four). */
static int real_uid(pid_t pid, uid_t *uid)
{
	char path[64], line[256];
	unsigned long v;
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "Uid: %lu", &v) == 1;
	fclose(f);
	if (!found)
		return -ENOENT;
	*uid = v;
	return 0;
}

/* A traced process the agent can answer about: attached, not gone. */
static struct tracee *answerable(struct agent *a, pid_t pid)
{
	struct tracee *t = tracees__find(&a->procs, pid);

	return t && !t->exited && t->attach == ATTACH_DONE ? t : NULL;
}

/*
 * A new client, by the kernel's word (SO_PEERCRED): a process we trace,
 * of its own real uid (or root): *tag is its pid; or a root process we
 * do not trace (memprof-bpf names), which names the process in each
 * request: *tag is ROOT_TAG(its pid). Else the refusal.
 */
static json_t *admit(void *ctx, int fd, long *tag)
{
	struct agent *a = ctx;
	struct ucred c;
	socklen_t len = sizeof(c);
	struct tracee *t;
	uid_t uid;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len))
		return query__error_reply("no peer credentials", 0);
	t = tracees__find(&a->procs, c.pid);
	if ((!t || t->exited) && c.uid == 0) {
		*tag = ROOT_TAG(c.pid);
		return NULL;
	}
	if (!answerable(a, c.pid))
		return query__error_reply("not traced", c.pid);
	if (c.uid != 0 && (real_uid(c.pid, &uid) || uid != c.uid))
		return query__error_reply("uid mismatch", c.pid);
	*tag = c.pid;
	return NULL;
}

/*
 * Read every record reserved before now: the caller's uprobes ran before
 * it could send, so its records are among them. ring_buffer__consume
 * stops at a record another thread reserved and has not committed yet,
 * and the caller's may lie behind it: go on until the consumer reaches
 * where the producer stood, for DRAIN_NS at most.
 */
static void drain_ring(struct agent *a)
{
	const struct query_server *s = a->query;
	uint64_t deadline = now_monotonic_ns() + DRAIN_NS;
	unsigned long until = 0;

	if (s->consumer && s->producer)
		until = __atomic_load_n(s->producer, __ATOMIC_ACQUIRE);
	a->now_ns = now_monotonic_ns();
	ring_buffer__consume(a->rb);
	while (until &&
	       __atomic_load_n(s->consumer, __ATOMIC_ACQUIRE) < until &&
	       now_monotonic_ns() < deadline) {
		usleep(100);
		a->now_ns = now_monotonic_ns();
		ring_buffer__consume(a->rb);
	}
	recording__drain_reserved(a);
}

/* The reply to req about t, its sites resolved first. */
static json_t *reply_about(struct agent *a, struct tracee *t,
			   const struct query_request *req)
{
	tracee__resolve_sites(t);
	if (req->op == QUERY_LIVE)
		return query__live_reply(t);
	if (req->op == QUERY_CELLS)
		return publish__state(a, t);
	return query__lookup_reply(t, req);
}

/*
 * Whom a request is about: a traced caller (tag: its pid) always itself,
 * whatever "pid" it sends; a root client the "pid" it names. 0 with the
 * refusal in *reply: a root client naming none is still told "not traced"
 * with its pid, as before root clients were admitted, for it may be an
 * untraced notebook kernel running as root, whose agent.py shows the
 * error and learns its own pid from it.
 */
static pid_t subject(long tag, const struct query_request *req, json_t **reply)
{
	if (!IS_ROOT_TAG(tag))
		return tag;
	if (!req->pid)
		*reply = query__error_reply("not traced; a root client must "
					    "name a \"pid\"",
					    -tag);
	return req->pid;
}

/*
 * The subject after the drain: a traced caller was admitted attached and
 * is answered until it exits (an exec's new attach may be pending); a
 * root client's subject must be attached now.
 */
static struct tracee *still_traced(struct agent *a, long tag, pid_t pid)
{
	struct tracee *t = tracees__find(&a->procs, pid);

	if (IS_ROOT_TAG(tag))
		return answerable(a, pid);
	return t && !t->exited ? t : NULL;
}

/*
 * Answer a request from its subject's heap, all it allocated counted; or
 * say why no request came.
 */
static json_t *answer(void *ctx, long tag, const char *line, size_t len,
		      const char *why)
{
	struct agent *a = ctx;
	struct query_request req;
	json_t *reply = NULL;
	struct tracee *t;
	char err[160];
	pid_t pid;

	if (!line)
		return query__error_reply(why, 0);
	if (query__parse(line, len, &req, err, sizeof(err)))
		return query__error_reply(err, 0);
	pid = subject(tag, &req, &reply);
	if (pid) {
		drain_ring(a);
		t = still_traced(a, tag, pid); /* its exit may have been read */
		reply = t ? reply_about(a, t, &req)
			  : query__error_reply("not traced", pid);
	}
	query__request_free(&req);
	return reply;
}

int query__start(struct agent *a, struct loop *loop)
{
	static const struct line_server_ops ops = { .accept = admit,
						    .answer = answer };
	static const struct line_server_limits limits = {
		.max_line = QUERY_MAX_LINE,
		.read_ns = READ_NS,
		.write_ns = WRITE_NS,
		.max_clients = MAX_CLIENTS,
	};
	char path[sizeof(a->publish_dir) + sizeof(QUERY_SOCKET) + 1];
	struct query_server *s;
	int err;

	if (!a->publishing) /* no safe directory: publish__start said so */
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/%s", a->publish_dir, QUERY_SOCKET);
	err = line_server__start(loop, path, &limits, &ops, a, &s->lines);
	if (err) {
		log_warn("%s/%s: %s; big_objs() in notebooks cannot ask this "
			 "agent",
			 a->publish_dir, QUERY_SOCKET, strerror(-err));
		free(s);
		return err;
	}
	map_positions(s, bpf_map__fd(a->skel->maps.events));
	a->query = s;
	return 0;
}

void query__stop(struct agent *a)
{
	struct query_server *s = a->query;

	if (!s)
		return;
	line_server__stop(s->lines);
	if (s->consumer)
		munmap((void *)s->consumer, s->page);
	if (s->producer)
		munmap((void *)s->producer, s->page);
	free(s);
	a->query = NULL;
}
