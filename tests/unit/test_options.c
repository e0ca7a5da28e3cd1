// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include "options.h"
#include "unit.h"

#define ARGC(v) ((int)(sizeof(v) / sizeof((v)[0])) - 1)

static char err[4096];

/* Parse, capturing stderr into err. */
static int parse(int argc, char **argv, struct env *env)
{
	struct capture c;
	int ret;

	capture_begin(&c, 2);
	ret = options__parse(argc, argv, env);
	capture_end(&c, err, sizeof(err));
	return ret;
}

/* An error is one line on stderr, prefixed with the tool name. */
static void expect_error(int argc, char **argv, const char *what)
{
	struct env env;

	cr_assert_eq(parse(argc, argv, &env), -1, "%s: accepted", what);
	cr_assert_eq(strncmp(err, "memprof-bpf: ", 13), 0, "%s: '%s'", what,
		     err);
	cr_assert_eq(count_lines(err), 1, "%s: '%s'", what, err);
}

Test(options, defaults, .timeout = 10)
{
	char *argv[] = { "memprof-bpf", "--pid", "1234", NULL };
	struct env env;

	memset(&env, 0xa5, sizeof(env));
	cr_assert_eq(parse(ARGC(argv), argv, &env), 0);
	cr_assert_str_empty(err);
	cr_assert_eq(env.npids, 1);
	cr_assert_eq(env.pids[0], 1234);
	cr_assert_eq(env.interval, 1.0);
	cr_assert_eq(env.duration, 0.0);
	cr_assert_eq(env.ringbuf_mb, 32);
	cr_assert_str_eq(env.snapshot_dir, ".");
	cr_assert_not(env.snapshot_dir_set);
	cr_assert_null(env.command);
	cr_assert_null(env.output);
	cr_assert_eq(env.ncomms, 0);
	cr_assert_not(env.batch);
	cr_assert_eq(env.verbose, 0);
	cr_assert_not(env.bench_floor);
}

Test(options, pid_repeated, .timeout = 10)
{
	char *argv[] = { "memprof-bpf", "--pid",    "10", "-p",
			 "20",		"--pid=30", NULL };
	struct env env;

	cr_assert_eq(parse(ARGC(argv), argv, &env), 0);
	cr_assert_eq(env.npids, 3);
	cr_assert_eq(env.pids[0], 10);
	cr_assert_eq(env.pids[1], 20);
	cr_assert_eq(env.pids[2], 30);
}

Test(options, bad_pids, .timeout = 10)
{
	char *zero[] = { "memprof-bpf", "--pid", "0", NULL };
	char *word[] = { "memprof-bpf", "--pid", "abc", NULL };
	char *neg[] = { "memprof-bpf", "--pid", "-5", NULL };
	char *huge[] = { "memprof-bpf", "--pid", "99999999999", NULL };
	char *none[] = { "memprof-bpf", "--pid", NULL };

	expect_error(ARGC(zero), zero, "pid 0");
	expect_error(ARGC(word), word, "pid abc");
	expect_error(ARGC(neg), neg, "pid -5");
	expect_error(ARGC(huge), huge, "pid too large");
	expect_error(ARGC(none), none, "missing pid");
}

Test(options, comm, .timeout = 10)
{
	char *argv[] = { "memprof-bpf", "--comm",    "python3",
			 "-c",		"ipykernel", NULL };
	char *empty[] = { "memprof-bpf", "--comm", "", NULL };
	struct env env;

	cr_assert_eq(parse(ARGC(argv), argv, &env), 0);
	cr_assert_eq(env.ncomms, 2);
	cr_assert_str_eq(env.comms[0], "python3");
	cr_assert_str_eq(env.comms[1], "ipykernel");
	cr_assert_eq(env.npids, 0);
	expect_error(ARGC(empty), empty, "empty comm");
}

Test(options, command_after_double_dash, .timeout = 10)
{
	char *argv[] = { "memprof-bpf", "-o", "out.json", "-b", "--",
			 "python3",	"-c", "print(1)", NULL };
	struct env env;

	cr_assert_eq(parse(ARGC(argv), argv, &env), 0);
	cr_assert_not_null(env.command);
	cr_assert_eq(env.command, &argv[5]);
	cr_assert_str_eq(env.command[0], "python3");
	cr_assert_str_eq(env.command[1], "-c");
	cr_assert_str_eq(env.command[2], "print(1)");
	cr_assert_null(env.command[3]);
	cr_assert_str_eq(env.output, "out.json");
	cr_assert(env.batch);
}

Test(options, command_options_are_not_ours, .timeout = 10)
{
	/* Everything after -- belongs to the command, even --pid. */
	char *argv[] = { "memprof-bpf", "--", "prog", "--pid", "7", NULL };
	struct env env;

	cr_assert_eq(parse(ARGC(argv), argv, &env), 0);
	cr_assert_eq(env.npids, 0);
	cr_assert_str_eq(env.command[0], "prog");
	cr_assert_str_eq(env.command[1], "--pid");
}

Test(options, output_without_command_is_an_error, .timeout = 10)
{
	char *argv[] = { "memprof-bpf", "-o", "x.json", "--pid", "5", NULL };

	expect_error(ARGC(argv), argv, "-o with --pid");
}

Test(options, nothing_to_trace_is_an_error, .timeout = 10)
{
	char *bare[] = { "memprof-bpf", NULL };
	char *flags[] = { "memprof-bpf", "-b", "-v", NULL };
	char *dashes[] = { "memprof-bpf", "--", NULL };

	expect_error(ARGC(bare), bare, "no arguments");
	expect_error(ARGC(flags), flags, "only flags");
	expect_error(ARGC(dashes), dashes, "empty command");
}

Test(options, stray_argument_is_an_error, .timeout = 10)
{
	char *argv[] = { "memprof-bpf", "--pid", "5", "python3", NULL };
	char *unknown[] = { "memprof-bpf", "--frobnicate", "--pid", "5", NULL };

	expect_error(ARGC(argv), argv, "command without --");
	expect_error(ARGC(unknown), unknown, "unknown option");
}

Test(options, intervals, .timeout = 10)
{
	char *ok[] = { "memprof-bpf", "-i",    "0.25", "--duration",
		       "3",	      "--pid", "1",    NULL };
	char *zero[] = { "memprof-bpf", "--interval", "0", "--pid", "1", NULL };
	char *neg[] = { "memprof-bpf", "--interval", "-1", "--pid", "1", NULL };
	char *word[] = {
		"memprof-bpf", "--interval", "abc", "--pid", "1", NULL
	};
	char *trail[] = { "memprof-bpf", "-i", "2s", "--pid", "1", NULL };
	char *dur[] = { "memprof-bpf", "-d", "0", "--pid", "1", NULL };
	struct env env;

	cr_assert_eq(parse(ARGC(ok), ok, &env), 0);
	cr_assert_eq(env.interval, 0.25);
	cr_assert_eq(env.duration, 3.0);
	expect_error(ARGC(zero), zero, "interval 0");
	expect_error(ARGC(neg), neg, "interval -1");
	expect_error(ARGC(word), word, "interval abc");
	expect_error(ARGC(trail), trail, "interval 2s");
	expect_error(ARGC(dur), dur, "duration 0");
}

Test(options, ringbuf_size, .timeout = 10)
{
	char *ok[] = {
		"memprof-bpf", "--ringbuf-size", "64", "--pid", "1", NULL
	};
	char *three[] = { "memprof-bpf", "--ringbuf-size", "3", "--pid", "1",
			  NULL };
	char *zero[] = { "memprof-bpf", "--ringbuf-size", "0", "--pid", "1",
			 NULL };
	char *big[] = { "memprof-bpf", "--ringbuf-size", "8192", "--pid", "1",
			NULL };
	struct env env;

	cr_assert_eq(parse(ARGC(ok), ok, &env), 0);
	cr_assert_eq(env.ringbuf_mb, 64);
	expect_error(ARGC(three), three, "ringbuf 3");
	expect_error(ARGC(zero), zero, "ringbuf 0");
	expect_error(ARGC(big), big, "ringbuf 8192");
}

Test(options, snapshot_dir_and_verbose, .timeout = 10)
{
	char *argv[] = { "memprof-bpf", "-D", "/tmp/snaps", "-vv",
			 "--comm",	"x",  NULL };
	struct env env;

	cr_assert_eq(parse(ARGC(argv), argv, &env), 0);
	cr_assert_str_eq(env.snapshot_dir, "/tmp/snaps");
	cr_assert(env.snapshot_dir_set);
	cr_assert_eq(env.verbose, 2);
}

Test(options, help_returns_1, .timeout = 10)
{
	char *argv[] = { "memprof-bpf", "--help", NULL };
	char *shortv[] = { "memprof-bpf", "-h", "--pid", "1", NULL };
	char *version[] = { "memprof-bpf", "--version", NULL };
	char out[8192];
	struct capture c;
	struct env env;

	capture_begin(&c, 1);
	cr_assert_eq(parse(ARGC(argv), argv, &env), 1);
	capture_end(&c, out, sizeof(out));
	cr_assert_eq(strncmp(out, "Usage: memprof-bpf", 18), 0, "'%s'", out);
	cr_assert_not_null(strstr(out, "--ringbuf-size"));

	capture_begin(&c, 1);
	cr_assert_eq(parse(ARGC(shortv), shortv, &env), 1);
	capture_end(&c, out, sizeof(out));
	cr_assert_eq(strncmp(out, "Usage:", 6), 0);

	capture_begin(&c, 1);
	cr_assert_eq(parse(ARGC(version), version, &env), 1);
	capture_end(&c, out, sizeof(out));
	cr_assert_eq(strncmp(out, "memprof-bpf ", 12), 0, "'%s'", out);
	cr_assert_eq(count_lines(out), 1);
}

/*
 * Parsing twice in one process (as these tests do) starts afresh: no
 * getopt state survives from a parse that stopped inside "-hb".
 */
Test(options, second_parse_starts_afresh, .timeout = 10)
{
	char *first[] = { "memprof-bpf", "-hb", NULL };
	char *bad[] = { "memprof-bpf", "-xv", NULL };
	char *second[] = { "memprof-bpf", "--pid", "5", NULL };
	char out[8192];
	struct capture c;
	struct env env;

	capture_begin(&c, 1);
	cr_assert_eq(parse(ARGC(first), first, &env), 1);
	capture_end(&c, out, sizeof(out));
	cr_assert_eq(parse(ARGC(second), second, &env), 0);
	cr_assert_not(env.batch, "-b of the previous argv leaked in");
	cr_assert_eq(env.npids, 1);
	cr_assert_eq(env.pids[0], 5);

	cr_assert_eq(parse(ARGC(bad), bad, &env), -1);
	cr_assert_eq(parse(ARGC(second), second, &env), 0);
	cr_assert_eq(env.verbose, 0, "-v of the previous argv leaked in");
	cr_assert_eq(env.npids, 1);
}

Test(options, format_flag_and_output_suffix, .timeout = 10)
{
	char *def[] = { "memprof-bpf", "-p", "1", NULL };
	char *html[] = { "memprof-bpf", "--format", "html", "-p", "1", NULL };
	char *folded[] = { "memprof-bpf", "-f", "folded", "-p", "1", NULL };
	char *by_name[] = {
		"memprof-bpf", "-o", "peak.html", "--", "true", NULL
	};
	char *by_name2[] = {
		"memprof-bpf", "-o", "x.folded", "--", "true", NULL
	};
	char *explicit[] = { "memprof-bpf", "-o", "peak.html", "-f",
			     "json",	    "--", "true",      NULL };
	char *plain[] = { "memprof-bpf", "-o", "x.json", "--", "true", NULL };
	char *gz[] = { "memprof-bpf", "-o", "x.json.gz", "--", "true", NULL };
	char *by_name3[] = { "memprof-bpf", "-o",   "peak.pb.gz",
			     "--",	    "true", NULL };
	char *bad[] = { "memprof-bpf", "--format", "svg", "-p", "1", NULL };
	struct env env;

	/* The compact snapshot (version 2, gzipped) unless asked otherwise. */
	cr_assert_eq(parse(ARGC(def), def, &env), 0);
	cr_assert_eq(env.format, SNAP_SNAPSHOT);
	cr_assert_eq(parse(ARGC(plain), plain, &env), 0);
	cr_assert_eq(env.format, SNAP_JSON, "-o x.json: plain JSON");
	cr_assert_eq(parse(ARGC(gz), gz, &env), 0);
	cr_assert_eq(env.format, SNAP_SNAPSHOT);
	cr_assert_eq(parse(ARGC(html), html, &env), 0);
	cr_assert_eq(env.format, SNAP_HTML);
	cr_assert_eq(parse(ARGC(folded), folded, &env), 0);
	cr_assert_eq(env.format, SNAP_FOLDED);
	/* -o's suffix decides when --format is not given... */
	cr_assert_eq(parse(ARGC(by_name), by_name, &env), 0);
	cr_assert_eq(env.format, SNAP_HTML);
	cr_assert_eq(parse(ARGC(by_name2), by_name2, &env), 0);
	cr_assert_eq(env.format, SNAP_FOLDED);
	cr_assert_eq(parse(ARGC(by_name3), by_name3, &env), 0);
	cr_assert_eq(env.format, SNAP_PPROF);
	/* ...and --format wins when it is. */
	cr_assert_eq(parse(ARGC(explicit), explicit, &env), 0);
	cr_assert_eq(env.format, SNAP_JSON);
	expect_error(ARGC(bad), bad, "--format svg");
	cr_assert(strstr(err, "json, folded, html or pprof"), "%s", err);
}

/* A command records in-process unless it asks for probes. */
Test(options, probes_default_and_choice, .timeout = 10)
{
	char *rec[] = { "memprof-bpf", "--", "ls", NULL };
	char *up[] = { "memprof-bpf", "--probes", "uprobe", "--", "ls", NULL };
	char *pym[] = { "memprof-bpf", "--pymalloc", "--", "ls", NULL };
	char *floor[] = { "memprof-bpf", "--bench-floor", "--", "ls", NULL };
	char *bad[] = { "memprof-bpf", "--probes", "recorder", "--pymalloc",
			"--",	       "ls",	   NULL };
	char *what[] = { "memprof-bpf", "--probes", "trap", "--", "ls", NULL };
	struct env env;

	cr_assert_eq(parse(ARGC(rec), rec, &env), 0, "%s", err);
	cr_assert(env.recorder);
	cr_assert_eq(parse(ARGC(up), up, &env), 0, "%s", err);
	cr_assert_not(env.recorder);
	/* CPython's allocator probed, or bare probes: uprobes only */
	cr_assert_eq(parse(ARGC(pym), pym, &env), 0, "%s", err);
	cr_assert_not(env.recorder);
	cr_assert_eq(parse(ARGC(floor), floor, &env), 0, "%s", err);
	cr_assert_not(env.recorder);
	expect_error(ARGC(bad), bad, "--probes recorder --pymalloc");
	cr_assert(strstr(err, "--pymalloc needs --probes uprobe"), "%s", err);
	expect_error(ARGC(what), what, "--probes trap");
}
