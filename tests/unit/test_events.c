// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <errno.h>
#include "model/events.h"
#include "memprof.h"
#include "procs/tracee.h"
#include "unit.h"

/* A REC_OOM record naming depth directories, innermost first. */
static struct rec_oom oom_record(unsigned depth, const char *const *names)
{
	struct rec_oom r = { .hdr.type = REC_OOM, .hdr.pid = 1 };
	unsigned i;

	r.depth = depth;
	for (i = 0; names && i < depth && i < MEMCG_DEPTH; i++)
		snprintf(r.names[i], sizeof(r.names[i]), "%s", names[i]);
	return r;
}

Test(events, oom_cgroup_path_outermost_first, .timeout = 10)
{
	static const char *const names[] = { "memprof-oom-1", "abc",
					     "process_api" };
	struct rec_oom r = oom_record(3, names);
	char buf[256];

	cr_assert_eq(events__oom_cgroup(&r, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/process_api/abc/memprof-oom-1");
}

Test(events, oom_cgroup_root_is_slash, .timeout = 10)
{
	struct rec_oom r = oom_record(0, NULL);
	char buf[8];

	cr_assert_eq(events__oom_cgroup(&r, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/");
}

Test(events, oom_cgroup_unknown_or_too_long, .timeout = 10)
{
	static const char *const names[] = { "leaf", "parent" };
	struct rec_oom r = oom_record(2, names);
	char buf[8];

	/* "/parent/leaf" does not fit: no half path. */
	cr_assert_eq(events__oom_cgroup(&r, buf, sizeof(buf)), -ENOENT);
	r.depth = MEMCG_UNKNOWN;
	cr_assert_eq(events__oom_cgroup(&r, buf, sizeof(buf)), -ENOENT);
}

/* ---- records into a tracee -------------------------------------------- */

#define GONE_PID 999999 /* no such process: nothing to read from /proc */

static const struct py_layout some_layout;

static struct tracee *fake_tracee(struct agent *a)
{
	struct tracee *t = tracee__new(GONE_PID, false);

	cr_assert_not_null(t);
	cr_assert_eq(tracees__add(&a->procs, t), 0);
	snprintf(t->comm, sizeof(t->comm), "victim");
	t->pylayout = &some_layout;
	t->oom_limit = t->oom_kills = -1;
	return t;
}

static struct rec_pycode *code_record(uint64_t id, uint32_t table_len)
{
	struct rec_pycode *r = calloc(1, sizeof(*r));

	cr_assert_not_null(r);
	r->hdr.type = REC_PYCODE;
	r->hdr.pid = GONE_PID;
	r->code_id = id;
	r->code = 0x7f0000001000ULL;
	r->firstlineno = 1;
	r->table_len = table_len;
	snprintf(r->filename, sizeof(r->filename), "oom.py");
	snprintf(r->name, sizeof(r->name), "<module>");
	return r;
}

Test(events, line_table_from_the_record_outlives_the_process, .timeout = 10)
{
	struct agent a = { .exit_code = 0 };
	struct tracee *t = fake_tracee(&a);
	struct rec_pycode *r = code_record(7, 3);
	const struct py_code *c;

	memcpy(r->table, "\x01\x02\x03", 3);
	events__handle(&a, r, sizeof(*r));
	c = pystacks__code(&t->py, 7);
	cr_assert_not_null(c);
	cr_assert_not_null(c->table, "copied by BPF: no need of the process");
	cr_assert_eq(c->table_len, 3);
	cr_assert_eq(memcmp(c->table, "\x01\x02\x03", 3), 0);

	/* Too long to copy: read from the process, which is gone here. */
	r->code_id = 8;
	r->table_len = PY_TABLE_NONE;
	events__handle(&a, r, sizeof(*r));
	c = pystacks__code(&t->py, 8);
	cr_assert_not_null(c);
	cr_assert_null(c->table);
	free(r);
	tracees__free(&a.procs);
}

Test(events, oom_record_marks_once_with_the_kernels_cgroup, .timeout = 10)
{
	static const char *const names[] = { "leaf", "memprof-test-none" };
	struct agent a = { .exit_code = 0 };
	struct tracee *t = fake_tracee(&a);
	struct rec_oom r = oom_record(2, names);
	struct capture cap;
	char err[1024];

	r.hdr.pid = GONE_PID;
	capture_begin(&cap, 2);
	events__handle(&a, &r, sizeof(r));
	r.from = OOM_AT_EXIT; /* said again at its exit: no second line */
	events__handle(&a, &r, sizeof(r));
	capture_end(&cap, err, sizeof(err));
	cr_assert(t->oom);
	cr_assert_str_eq(t->memcg.path, "/memprof-test-none/leaf");
	cr_assert_eq(t->oom_limit, -1, "no such cgroup: no limit");
	cr_assert_eq(count_lines(err), 1, "%s", err);
	cr_assert_not_null(strstr(err, "is being killed for lack of memory"),
			   "%s", err);
	tracees__free(&a.procs);
}

Test(events, oom_record_of_an_unknown_cgroup_keeps_the_noted_one, .timeout = 10)
{
	struct agent a = { .exit_code = 0 };
	struct tracee *t = fake_tracee(&a);
	struct rec_oom r = oom_record(MEMCG_UNKNOWN, NULL);
	struct capture cap;
	char err[1024];

	snprintf(t->memcg.path, sizeof(t->memcg.path), "/noted");
	t->oom_limit = 150 << 20;
	r.hdr.pid = GONE_PID;
	r.from = OOM_AT_EXIT;
	capture_begin(&cap, 2);
	events__handle(&a, &r, sizeof(r));
	capture_end(&cap, err, sizeof(err));
	cr_assert(t->oom);
	cr_assert_str_eq(t->memcg.path, "/noted");
	cr_assert_eq(t->oom_limit, 150 << 20);
	cr_assert_not_null(strstr(err, "was killed for lack of memory"), "%s",
			   err);
	tracees__free(&a.procs);
}
