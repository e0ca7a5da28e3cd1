// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `memprof-bpf names` (user/names/names.c): its command line (each error
 * exits 2 with one line), the processes it refuses (none, not Python),
 * and a Python child's table and JSON, summarized by /usr/bin/python3 -m
 * memprof_bpf.names from this worktree's python/.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <limits.h>
#include "names/names.h"
#include "names_child.h"
#include "unit.h"

static char out[1 << 16], err[1 << 12];

/* names__main(argv...) with stdout and stderr captured; its exit code. */
static int run(char **argv)
{
	struct capture co, ce;
	int argc = 0, code;

	while (argv[argc])
		argc++;
	capture_begin(&co, 1);
	capture_begin(&ce, 2);
	code = names__main(argc, argv);
	capture_end(&ce, err, sizeof(err));
	capture_end(&co, out, sizeof(out));
	return code;
}

#define RUN(...) run((char *[]){ "names", __VA_ARGS__, NULL })

/* Exit 2 with exactly one line on stderr, that line, nothing on stdout. */
static void refused(int code, const char *line)
{
	cr_assert_eq(code, 2, "exit %d (%s)", code, err);
	cr_assert_eq(count_lines(err), 1, "stderr: '%s'", err);
	cr_assert_str_eq(err, line);
	cr_assert_str_eq(out, "");
}

Test(names, bad_flags)
{
	refused(RUN("--bogus"), "memprof-bpf: names: bad option '--bogus'; "
				"try names --help\n");
	refused(RUN("-x"), "memprof-bpf: names: bad option '-x'; "
			   "try names --help\n");
	refused(RUN("--pid", "1", "stray"), "memprof-bpf: names: unexpected "
					    "'stray'; try names --help\n");
}

Test(names, missing_argument)
{
	refused(RUN("--pid"), "memprof-bpf: names: bad option '--pid'; "
			      "try names --help\n");
}

Test(names, pid_not_a_number)
{
	refused(RUN("--pid", "abc"), "memprof-bpf: --pid wants a process id, "
				     "not 'abc'\n");
	refused(RUN("--pid", "0"), "memprof-bpf: --pid wants a process id, "
				   "not '0'\n");
	refused(RUN("--pid", "1.5"), "memprof-bpf: --pid wants a process id, "
				     "not '1.5'\n");
}

Test(names, bad_numbers)
{
	refused(RUN("--pid", "1", "--budget", "-1"), "memprof-bpf: names: "
						     "--budget wants a number "
						     "from 0.01 to "
						     "3600, not '-1'\n");
	refused(RUN("--pid", "1", "--top", "x"), "memprof-bpf: names: --top "
						 "wants a number from 0 to "
						 "1e+06, "
						 "not 'x'\n");
	refused(RUN("--pid", "1", "--depth", "0"), "memprof-bpf: names: "
						   "--depth wants a number "
						   "from 1 to 10000, "
						   "not '0'\n");
}

Test(names, bad_format)
{
	refused(RUN("--pid", "1", "--format", "xml"), "memprof-bpf: --format "
						      "wants text or json, not "
						      "'xml'\n");
}

Test(names, no_target)
{
	refused(RUN("--format", "json"), "memprof-bpf: names: say which "
					 "process: --pid PID or --comm "
					 "NAME\n");
	refused(run((char *[]){ "names", NULL }), "memprof-bpf: names: say "
						  "which process: --pid PID or "
						  "--comm "
						  "NAME\n");
}

Test(names, help)
{
	cr_assert_eq(RUN("--help"), 0);
	cr_assert_str_eq(err, "");
	cr_assert(strncmp(out, "usage: memprof-bpf names", 24) == 0, "%s", out);
	cr_assert_eq(RUN("--pid", "1", "-h"), 0);
	cr_assert(strncmp(out, "usage: memprof-bpf names", 24) == 0);
}

Test(names, no_process)
{
	char pid[32], line[128];
	pid_t p = fork();

	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	snprintf(pid, sizeof(pid), "%d", (int)p);
	snprintf(line, sizeof(line),
		 "memprof-bpf: names: no process %d (or it exited)\n", (int)p);
	refused(RUN("--pid", pid), line);
}

Test(names, not_python, .timeout = 20)
{
	char pid[32], line[128];
	pid_t p = fork();

	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl("/bin/sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	usleep(200000); /* exec'd */
	snprintf(pid, sizeof(pid), "%d", (int)p);
	snprintf(line, sizeof(line),
		 "memprof-bpf: names: pid %d is not a Python process\n",
		 (int)p);
	refused(RUN("--pid", pid), line);
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
}

static const char code[] = "import time\n"
			   "big_blob = bytes(3_000_000)\n"
			   "other = bytearray(2_000_000)\n"
			   "same = other\n"
			   "print('ready', flush=True)\n"
			   "time.sleep(30)\n";

static const struct interp debian = INTERP_311;

/* The summarizer is this worktree's python/ (tests run from its top). */
static void pythonpath(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];

	cr_assert_not_null(getcwd(dir, sizeof(dir)));
	snprintf(path, sizeof(path), "%s/python", dir);
	cr_assert_eq(access("python/memprof_bpf/names.py", R_OK), 0,
		     "run from the repository's top");
	setenv("PYTHONPATH", path, 1);
	setenv("MEMPROF_BPF_PYTHON", "/usr/bin/python3", 1);
}

Test(names, python_table, .timeout = 30)
{
	struct child c = child_start(&debian, code);
	char pid[32], head[64];
	int code;

	pythonpath();
	snprintf(pid, sizeof(pid), "%d", (int)c.pid);
	code = RUN("--pid", pid);
	cr_assert_eq(code, 0, "exit %d: %s", code, err);
	cr_assert_str_eq(err, "");
	snprintf(head, sizeof(head), "pid %d (python 3.11.", (int)c.pid);
	cr_assert(strncmp(out, head, strlen(head)) == 0, "%s", out);
	cr_assert_not_null(strstr(out, "\nbig_blob "), "%s", out);
	cr_assert_not_null(strstr(out, "bytes len 3000000"), "%s", out);
	cr_assert_not_null(strstr(out, "\nother "), "%s", out);
	cr_assert_not_null(strstr(out, "\nsame "), "%s", out);
	child_stop(&c);
}

/* The fields: pid, python, total_live_bytes, names[]. */
Test(names, python_json, .timeout = 30)
{
	struct child c = child_start(&debian, code);
	json_t *j, *p, *names, *n, *blob = NULL, *other = NULL;
	json_error_t jerr;
	char pid[32];
	size_t i;
	int code;

	pythonpath();
	snprintf(pid, sizeof(pid), "%d", (int)c.pid);
	code = RUN("--pid", pid, "--format", "json");
	cr_assert_eq(code, 0, "exit %d: %s", code, err);
	cr_assert_str_eq(err, "");
	j = json_loads(out, 0, &jerr);
	cr_assert_not_null(j, "%s: %s", jerr.text, out);
	cr_assert(json_is_array(j));
	cr_assert_eq(json_array_size(j), 1);
	p = json_array_get(j, 0);
	cr_assert_eq(json_integer_value(json_object_get(p, "pid")), c.pid);
	cr_assert(strncmp(json_string_value(json_object_get(p, "python")),
			  "3.11.", 5) == 0);
	cr_assert(json_is_null(json_object_get(p, "total_live_bytes")));
	names = json_object_get(p, "names");
	cr_assert(json_is_array(names));
	json_array_foreach(names, i, n)
	{
		const char *name = json_string_value(json_object_get(n, "nam"
									"e"));

		cr_assert_not_null(name);
		cr_assert(json_is_string(json_object_get(n, "type")));
		cr_assert(json_is_integer(json_object_get(n, "bytes")));
		cr_assert(json_is_integer(json_object_get(n, "exclusive_"
							     "bytes")));
		cr_assert(json_is_array(json_object_get(n, "shared_with")));
		cr_assert_not_null(json_object_get(n, "cell"));
		cr_assert_not_null(json_object_get(n, "where"));
		if (!strcmp(name, "big_blob"))
			blob = n;
		if (!strcmp(name, "other"))
			other = n;
	}
	cr_assert_not_null(blob, "%s", out);
	cr_assert_str_eq(json_string_value(json_object_get(blob, "type")), "byt"
									   "e"
									   "s");
	cr_assert_eq(json_integer_value(json_object_get(blob, "bytes")),
		     3000033);
	cr_assert_eq(json_integer_value(json_object_get(blob, "exclusive_"
							      "bytes")),
		     3000033);
	cr_assert_eq(json_array_size(json_object_get(blob, "shared_with")), 0);
	cr_assert(json_is_null(json_object_get(blob, "cell")));
	cr_assert(json_is_null(json_object_get(blob, "where")));
	/* other and same: one object, nothing freed by deleting one name */
	cr_assert_not_null(other, "%s", out);
	cr_assert_eq(json_integer_value(json_object_get(other, "exclusive_"
							       "bytes")),
		     0);
	cr_assert_eq(json_array_size(json_object_get(other, "shared_with")), 1);
	cr_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(other, "shared_with"), 0)),
			 "same");
	json_decref(j);
	child_stop(&c);
}
