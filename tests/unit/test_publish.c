// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "agent.h"
#include "output/publish.h"
#include "procs/tracee.h"
#include "unit.h"

#define CELL_FILE "/tmp/ipykernel_123/4062188087.py"
#define MOD 0x1111000000000001ULL
#define STACK 0xa000000000000001ULL

/* The files are chowned to their process's owner and root's: needs root. */
static void need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("publishing chowns files: run as root");
}

/* A fresh private directory under /tmp, 0755 as /run/memprof-bpf is. */
static char *make_dir(void)
{
	char *dir = strdup("/tmp/memprof-publish-XXXXXX");

	cr_assert_not_null(dir);
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(chmod(dir, 0755), 0);
	return dir;
}

static void remove_dir(char *dir)
{
	char path[512];
	struct dirent *e;
	DIR *d = opendir(dir);

	while (d && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	}
	if (d)
		closedir(d);
	rmdir(dir);
	free(dir);
}

/* Names in dir, sorted, space-separated: "agent.pid 123.json". */
static const char *listing(const char *dir)
{
	static char buf[1024];
	struct dirent **names;
	int i, n = scandir(dir, &names, NULL, alphasort);

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			if (buf[0])
				strcat(buf, " ");
			strncat(buf, names[i]->d_name,
				sizeof(buf) - strlen(buf) - 2);
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	return buf;
}

static const char *in_dir(const char *dir, const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static const char *read_text(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	size_t n;

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void expect_mode(const char *path, mode_t mode)
{
	struct stat st;

	cr_assert_eq(lstat(path, &st), 0, "%s: %s", path, strerror(errno));
	cr_assert(S_ISREG(st.st_mode), "%s is not a regular file", path);
	cr_assert_eq(st.st_mode & 07777, mode, "%s: mode %o, want %o", path,
		     (unsigned)(st.st_mode & 07777), (unsigned)mode);
	cr_assert_eq(st.st_uid, geteuid());
}

static struct agent *new_agent(void)
{
	struct agent *a = calloc(1, sizeof(*a));

	cr_assert_not_null(a);
	a->now_ns = now_monotonic_ns();
	return a;
}

/* publish__start, with its warning captured; returns what it printed. */
static int start(struct agent *a, const char *dir, char *err, size_t size)
{
	struct capture cap;
	int ret;

	capture_begin(&cap, 2);
	ret = publish__start(a, dir);
	capture_end(&cap, err, size);
	return ret;
}

static void add_code(struct pystacks *ps, uint64_t id, const char *file,
		     const char *name)
{
	struct rec_pycode r;

	memset(&r, 0, sizeof(r));
	r.code_id = id;
	r.code = 0x7f0000001000ULL;
	strncpy(r.filename, file, sizeof(r.filename) - 1);
	strncpy(r.name, name, sizeof(r.name) - 1);
	cr_assert_eq(pystacks__add_code(ps, &r), 0);
}

/*
 * A Python tracee in a notebook: In [3] allocates 4096 then 1000 (freed),
 * code outside cells 100 after it.
 */
static struct tracee *kernel(pid_t pid, uint64_t t0)
{
	struct tracee *t = tracee__new(pid, false);
	struct rec_pystack *st = calloc(1, sizeof(*st));
	struct rec_cell m;
	int64_t cell, out;
	uint64_t peak;

	cr_assert_not_null(t);
	cr_assert_not_null(st);
	t->python = true;
	add_code(&t->py, MOD, CELL_FILE, "<module>");
	st->stack_id = STACK;
	st->depth = 1;
	st->frames[0].code_id = MOD;
	cr_assert_eq(pystacks__add_stack(&t->py, st), 0);
	free(st);

	memset(&m, 0, sizeof(m));
	m.execution_count = 3;
	m.ts_ns = t0;
	strcpy(m.file, CELL_FILE);
	strcpy(m.head, "x = bytearray(4096)");
	cells__marker(&t->cells, &m, 0);
	cell = tracee__site(t, 0x401000, STACK, NULL, t0 + 1);
	cr_assert_eq(t->sites.v[cell].run, 0);
	/* As events.c: did the event raise the high-water mark? */
	peak = t->heap.peak_bytes;
	cr_assert_eq(heap__alloc(&t->heap, 0x1000, 4096, cell, t0 + 2), 0);
	cells__on_alloc(&t->cells, t->sites.v[cell].run, t->heap.live_bytes,
			t->heap.peak_bytes > peak);
	peak = t->heap.peak_bytes;
	cr_assert_eq(heap__alloc(&t->heap, 0x2000, 1000, cell, t0 + 3), 0);
	cells__on_alloc(&t->cells, t->sites.v[cell].run, t->heap.live_bytes,
			t->heap.peak_bytes > peak);
	heap__release(&t->heap, 0x2000);
	m.done = 1;
	m.success = 1;
	m.ts_ns = t0 + 4;
	cells__marker(&t->cells, &m, t->heap.live_bytes);
	out = tracee__site(t, 0x402000, 0, NULL, t0 + 5);
	cr_assert_eq(t->sites.v[out].run, CELL_OUTSIDE);
	peak = t->heap.peak_bytes;
	cr_assert_eq(heap__alloc(&t->heap, 0x3000, 100, out, t0 + 6), 0);
	cells__on_alloc(&t->cells, t->sites.v[out].run, t->heap.live_bytes,
			t->heap.peak_bytes > peak);
	return t;
}

static json_int_t int_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

static const char *str_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_string(v), "%s is not a string", key);
	return json_string_value(v);
}

Test(publish, start_writes_agent_pid, .timeout = 10)
{
	struct agent *a = new_agent();
	char *dir, err[512], want[32];

	need_root();
	dir = make_dir();
	cr_assert_eq(start(a, dir, err, sizeof(err)), 0);
	cr_assert_str_eq(err, "", "no warning");
	cr_assert(a->publishing);
	cr_assert_str_eq(a->publish_dir, dir);
	snprintf(want, sizeof(want), "%d\n", (int)getpid());
	cr_assert_str_eq(read_text(in_dir(dir, "agent.pid")), want);
	expect_mode(in_dir(dir, "agent.pid"), 0644);
	cr_assert_str_eq(listing(dir), "agent.pid", "no temp file left");
	publish__stop(a);
	remove_dir(dir);
	free(a);
}

Test(publish, start_creates_the_directory, .timeout = 10)
{
	struct agent *a = new_agent();
	char *parent, dir[512], err[512];
	struct stat st;

	need_root();
	umask(022);
	parent = make_dir();
	snprintf(dir, sizeof(dir), "%s/state", parent);
	cr_assert_eq(start(a, dir, err, sizeof(err)), 0);
	cr_assert(a->publishing);
	cr_assert_eq(lstat(dir, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0755);
	cr_assert_str_eq(listing(dir), "agent.pid");
	publish__stop(a);
	rmdir(dir);
	remove_dir(parent);
	free(a);
}

Test(publish, writable_directory_is_refused, .timeout = 10)
{
	static const mode_t modes[] = { 0775, 0757, 0777, 01777 };
	char *dir, err[512];
	size_t i;

	need_root();
	dir = make_dir();
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct agent *a = new_agent();

		cr_assert_eq(chmod(dir, modes[i]), 0);
		cr_assert_eq(start(a, dir, err, sizeof(err)), -EPERM, "mode %o",
			     (unsigned)modes[i]);
		cr_assert_not(a->publishing, "mode %o", (unsigned)modes[i]);
		cr_assert_not_null(strstr(err, "warning"), "%s", err);
		cr_assert_not_null(strstr(err, dir), "%s", err);
		cr_assert_eq(count_lines(err), 1, "one warning: %s", err);
		cr_assert_str_eq(listing(dir), "", "mode %o: nothing written",
				 (unsigned)modes[i]);
		/* Nothing published, nothing removed. */
		publish__tick(a);
		publish__stop(a);
		cr_assert_str_eq(listing(dir), "");
		free(a);
	}
	remove_dir(dir);
}

Test(publish, directory_of_another_user_is_refused, .timeout = 10)
{
	struct agent *a = new_agent();
	char *dir, err[512];

	need_root();
	dir = make_dir();
	cr_assert_eq(chown(dir, 65534, 65534), 0);
	cr_assert_eq(start(a, dir, err, sizeof(err)), -EPERM);
	cr_assert_not(a->publishing);
	cr_assert_str_eq(listing(dir), "");
	remove_dir(dir);
	free(a);
}

Test(publish, symlink_in_place_of_the_directory_is_refused, .timeout = 10)
{
	struct agent *a = new_agent();
	char *real, link[512], err[512];

	need_root();
	real = make_dir();
	snprintf(link, sizeof(link), "%s.link", real);
	cr_assert_eq(symlink(real, link), 0);
	cr_assert_eq(start(a, link, err, sizeof(err)), -EPERM);
	cr_assert_not(a->publishing);
	cr_assert_not_null(strstr(err, link), "%s", err);
	cr_assert_str_eq(listing(real), "", "nothing written through it");
	unlink(link);
	remove_dir(real);
	free(a);
}

Test(publish, tick_writes_python_tracees, .timeout = 10)
{
	struct agent *a = new_agent();
	struct tracee *t, *native, *gone;
	char *dir, err[512], name[32], want[64];
	json_t *doc, *cells, *c;
	json_error_t jerr;

	need_root();
	dir = make_dir();
	cr_assert_eq(start(a, dir, err, sizeof(err)), 0);
	t = kernel(getpid(), a->now_ns - 1000000);
	cr_assert_eq(tracees__add(&a->procs, t), 0);
	/* Neither a native process nor an exited one is published. */
	native = tracee__new(getppid(), false);
	cr_assert_not_null(native);
	cr_assert_eq(tracees__add(&a->procs, native), 0);
	gone = kernel(getppid() + 100000, a->now_ns);
	gone->exited = true;
	cr_assert_eq(tracees__add(&a->procs, gone), 0);

	publish__tick(a);
	snprintf(name, sizeof(name), "%d.json", (int)getpid());
	snprintf(want, sizeof(want), "%s agent.pid", name);
	cr_assert_str_eq(listing(dir), want);
	expect_mode(in_dir(dir, name), 0600);

	doc = json_load_file(in_dir(dir, name), 0, &jerr);
	cr_assert_not_null(doc, "not JSON: %s (line %d)", jerr.text, jerr.line);
	cr_assert_eq(json_object_size(doc), 8,
		     "keys: pid, agent_pid, "
		     "updated_at, live_bytes, "
		     "peak_bytes, peak_at, peak_cell, "
		     "cells");
	cr_assert_eq(int_of(doc, "pid"), getpid());
	cr_assert_eq(int_of(doc, "agent_pid"), getpid());
	cr_assert_gt(strlen(str_of(doc, "updated_at")), 0);
	cr_assert_eq(int_of(doc, "live_bytes"), 4196);
	cr_assert_eq(int_of(doc, "peak_bytes"), 5096);
	cr_assert_gt(strlen(str_of(doc, "peak_at")), 0);
	cr_assert_str_eq(str_of(doc, "peak_cell"), "In [3]");
	cells = json_object_get(doc, "cells");
	cr_assert(json_is_array(cells));
	cr_assert_eq(json_array_size(cells), 2);
	c = json_array_get(cells, 0);
	cr_assert_str_eq(str_of(c, "label"), "In [3]");
	cr_assert_eq(int_of(c, "execution_count"), 3);
	cr_assert_str_eq(str_of(c, "source_head"), "x = bytearray(4096)");
	cr_assert_eq(int_of(c, "live_bytes"), 4096);
	cr_assert_eq(int_of(c, "bytes_at_process_peak"), 5096);
	cr_assert_eq(int_of(c, "peak_bytes_during"), 5096);
	cr_assert_eq(int_of(c, "peak_above_start"), 5096);
	cr_assert_eq(int_of(c, "count"), 2);
	c = json_array_get(cells, 1);
	cr_assert_str_eq(str_of(c, "label"), "(outside cells)");
	cr_assert_eq(int_of(c, "live_bytes"), 100);
	cr_assert_eq(int_of(c, "bytes_at_process_peak"), 0);
	cr_assert_eq(int_of(c, "count"), 1);
	json_decref(doc);

	/* The next tick replaces the file with the new figures. */
	cr_assert_eq(heap__release(&t->heap, 0x1000), 4096);
	publish__tick(a);
	cr_assert_str_eq(listing(dir), want, "no temp file left");
	doc = json_load_file(in_dir(dir, name), 0, &jerr);
	cr_assert_not_null(doc);
	cr_assert_eq(int_of(doc, "live_bytes"), 100);
	cr_assert_eq(int_of(doc, "peak_bytes"), 5096);
	json_decref(doc);

	/* Forgotten: its file goes, twice is harmless. */
	publish__forget(a, getpid());
	cr_assert_str_eq(listing(dir), "agent.pid");
	publish__forget(a, getpid());
	cr_assert_str_eq(listing(dir), "agent.pid");

	publish__stop(a);
	cr_assert_str_eq(listing(dir), "");
	cr_assert_not(a->publishing);
	tracees__free(&a->procs);
	remove_dir(dir);
	free(a);
}

Test(publish, tick_without_cells, .timeout = 10)
{
	struct agent *a = new_agent();
	struct tracee *t;
	char *dir, err[512], name[32];
	json_error_t jerr;
	json_t *doc;

	need_root();
	dir = make_dir();
	cr_assert_eq(start(a, dir, err, sizeof(err)), 0);
	t = tracee__new(getpid(), false);
	cr_assert_not_null(t);
	t->python = true;
	cr_assert_eq(tracees__add(&a->procs, t), 0);
	publish__tick(a);
	snprintf(name, sizeof(name), "%d.json", (int)getpid());
	doc = json_load_file(in_dir(dir, name), 0, &jerr);
	cr_assert_not_null(doc, "%s", jerr.text);
	cr_assert_eq(int_of(doc, "live_bytes"), 0);
	cr_assert_eq(int_of(doc, "peak_bytes"), 0);
	cr_assert(json_is_null(json_object_get(doc, "peak_at")));
	cr_assert(json_is_null(json_object_get(doc, "peak_cell")));
	cr_assert(json_is_array(json_object_get(doc, "cells")));
	cr_assert_eq(json_array_size(json_object_get(doc, "cells")), 0);
	json_decref(doc);
	publish__forget(a, getpid());
	publish__stop(a);
	tracees__free(&a->procs);
	remove_dir(dir);
	free(a);
}

Test(publish, stop_keeps_another_agents_pid_file, .timeout = 10)
{
	struct agent *a = new_agent();
	char *dir, err[512];

	need_root();
	dir = make_dir();
	cr_assert_eq(start(a, dir, err, sizeof(err)), 0);
	/* Another agent started since and wrote its own pid. */
	write_text(in_dir(dir, "agent.pid"), "1\n");
	publish__stop(a);
	cr_assert_not(a->publishing);
	cr_assert_str_eq(listing(dir), "agent.pid");
	cr_assert_str_eq(read_text(in_dir(dir, "agent.pid")), "1\n");
	/* Stopped: stopping again touches nothing. */
	publish__stop(a);
	cr_assert_str_eq(read_text(in_dir(dir, "agent.pid")), "1\n");
	remove_dir(dir);
	free(a);
}

/* A child named like the agent, waiting to be killed: another agent. */
static pid_t fake_agent(void)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_NAME, "memprof-bpf");
		pause();
		_exit(0);
	}
	return pid;
}

/*
 * A second agent must not take over the directory of one that runs: it
 * would overwrite its files and steal its socket. A stale agent.pid (no
 * such process, or a process that is not an agent) is taken over.
 */
Test(publish, another_live_agent_keeps_its_directory, .timeout = 10)
{
	struct agent *a = new_agent();
	char *dir, err[512], text[32];
	pid_t other;
	int i;

	need_root();
	dir = make_dir();
	other = fake_agent();
	snprintf(text, sizeof(text), "%d\n", (int)other);
	for (i = 0; i < 200; i++) { /* until the child has renamed itself */
		char path[64], comm[32] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)other);
		f = fopen(path, "r");
		if (f && fgets(comm, sizeof(comm), f) &&
		    !strcmp(comm, "memprof-bpf\n"))
			i = 1000;
		if (f)
			fclose(f);
		if (i < 1000)
			usleep(10000);
	}
	write_text(in_dir(dir, "agent.pid"), text);
	cr_assert_eq(start(a, dir, err, sizeof(err)), -EEXIST);
	cr_assert_not(a->publishing);
	cr_assert_not_null(strstr(err, "another agent"), "%s", err);
	cr_assert_str_eq(read_text(in_dir(dir, "agent.pid")), text);
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
	/* Gone: its pid file is stale and this agent takes the directory. */
	cr_assert_eq(start(a, dir, err, sizeof(err)), 0);
	cr_assert(a->publishing);
	publish__stop(a);
	/* A live process that is not an agent is no reason to step aside. */
	snprintf(text, sizeof(text), "%d\n", (int)getppid());
	write_text(in_dir(dir, "agent.pid"), text);
	cr_assert_eq(start(a, dir, err, sizeof(err)), 0);
	publish__stop(a);
	remove_dir(dir);
	free(a);
}

/*
 * publish.h promises "Remove agent.pid (if still ours) and every file
 * written": the <pid>.json of a process still traced at stop goes too.
 */
Test(publish, stop_removes_every_file_written, .timeout = 10)
{
	struct agent *a = new_agent();
	struct tracee *t;
	char *dir, err[512], left[1024];

	need_root();
	dir = make_dir();
	cr_assert_eq(start(a, dir, err, sizeof(err)), 0);
	t = tracee__new(getpid(), false);
	cr_assert_not_null(t);
	t->python = true;
	cr_assert_eq(tracees__add(&a->procs, t), 0);
	publish__tick(a);
	cr_assert_neq(strcmp(listing(dir), "agent.pid"), 0, "a file written");
	publish__stop(a);
	snprintf(left, sizeof(left), "%s", listing(dir));
	tracees__free(&a->procs);
	remove_dir(dir);
	free(a);
	cr_assert_str_eq(left, "", "left behind after publish__stop: %s", left);
}
