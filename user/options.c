// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/args.h"
#include "lib/log.h"
#include "lib/text.h"
#include "options.h"

#define MEMPROF_VERSION "0.1.0"

static const char usage[] =
	"Usage: memprof-bpf [OPTIONS] (--pid PID | --comm NAME | -- CMD "
	"[ARGS])\n"
	"       memprof-bpf report FILE [--by cell|stack|file] [--top N]\n"
	"                   [--format text|folded|html|pprof]\n"
	"       memprof-bpf diff A B [--top N]\n"
	"Trace the allocations of running or new processes from outside and\n"
	"keep the breakdown of live bytes at their peak; report and diff read\n"
	"saved snapshots (no root needed).\n"
	"\n"
	"  -p, --pid PID          trace a running process (repeatable)\n"
	"  -c, --comm NAME        trace every process named NAME or running\n"
	"                         NAME as a word/module, now and later\n"
	"  -- CMD [ARGS]          run CMD (as the sudo user) under the tracer\n"
	"  -o, --output FILE      peak snapshot of CMD goes to FILE\n"
	"  -f, --format FMT       snapshot files as snapshot (default: "
	"compact\n"
	"                         JSON, gzipped, .json.gz), json (the same\n"
	"                         written out, for jq), folded "
	"(flamegraph.pl,\n"
	"                         speedscope), html (a flame graph page) or\n"
	"                         pprof (go tool pprof, speedscope); -o\n"
	"                         FILE.html, .json, .folded or .pb.gz\n"
	"                         implies that format\n"
	"  -D, --snapshot-dir DIR per-process snapshots go to DIR (default "
	".);\n"
	"                         with -D, forked children get snapshots too\n"
	"                         when their peak reached 1 MiB\n"
	"      --all-snapshots    with -D, every forked child gets one\n"
	"  -i, --interval S       seconds between report lines (default 1)\n"
	"  -d, --duration S       stop after S seconds\n"
	"      --snapshot-every S rewrite each process's snapshot every S\n"
	"                         seconds (-o FILE, or ...-periodic.json.gz)\n"
	"  -b, --batch            line output even on a terminal\n"
	"      --ringbuf-size MB  event ring buffer size (default 32)\n"
	"      --py-depth N       Python frames kept per stack, 1-128\n"
	"                         (default 64; deeper stacks are marked)\n"
	"      --pymalloc         count Python's small objects one by one\n"
	"                         (probes CPython's object allocator; slower,\n"
	"                         needs an interpreter with symbols)\n"
	"      --probes KIND      recorder (default for a command: it records\n"
	"                         its own allocations, no trap per call) or\n"
	"                         uprobe (what --pid and --comm get)\n"
	"      --no-census        count only what is allocated after attach\n"
	"                         (by default the heap a running process\n"
	"                         already holds is read at attach and counted\n"
	"                         as \"(before attach)\")\n"
	"  -v, --verbose          more detail on stderr (twice: debug)\n"
	"  -h, --help             this text\n"
	"      --version          print the version\n"
	"\n"
	"Signals: SIGUSR1 writes snapshots of all traced processes now;\n"
	"SIGINT/SIGTERM stop and write the final snapshots.\n";

enum {
	OPT_RINGBUF = 256,
	OPT_VERSION,
	OPT_FLOOR,
	OPT_PROBES,
	OPT_PYDEPTH,
	OPT_PYMALLOC,
	OPT_EVERY,
	OPT_NO_CENSUS,
	OPT_ALL_SNAPSHOTS,
};

static const struct option longopts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "comm", required_argument, NULL, 'c' },
	{ "output", required_argument, NULL, 'o' },
	{ "format", required_argument, NULL, 'f' },
	{ "snapshot-dir", required_argument, NULL, 'D' },
	{ "interval", required_argument, NULL, 'i' },
	{ "duration", required_argument, NULL, 'd' },
	{ "batch", no_argument, NULL, 'b' },
	{ "ringbuf-size", required_argument, NULL, OPT_RINGBUF },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "bench-floor", no_argument, NULL, OPT_FLOOR },
	{ "probes", required_argument, NULL, OPT_PROBES },
	{ "py-depth", required_argument, NULL, OPT_PYDEPTH },
	{ "pymalloc", no_argument, NULL, OPT_PYMALLOC },
	{ "snapshot-every", required_argument, NULL, OPT_EVERY },
	{ "no-census", no_argument, NULL, OPT_NO_CENSUS },
	{ "all-snapshots", no_argument, NULL, OPT_ALL_SNAPSHOTS },
	{ 0 },
};

/* A positive number of seconds, or an error naming the flag. */
static int parse_seconds(const char *flag, const char *arg, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v > 0) || v > 1e9) {
		log_err("%s wants a positive number of seconds, not '%s'", flag,
			arg);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_pid(const char *arg, struct env *env)
{
	pid_t pid;

	if (args__pid(arg, &pid))
		return -1;
	if (env->npids == MAX_PIDS) {
		log_err("at most %d --pid options", MAX_PIDS);
		return -1;
	}
	env->pids[env->npids++] = pid;
	return 0;
}

/* --probes uprobe|recorder: how the command's allocations are seen. */
static int parse_probes(const char *arg, struct env *env)
{
	static const char *const kinds[] = { "uprobe", "recorder" };
	int i = args__choice("--probes", arg, kinds, 2);

	if (i < 0)
		return -1;
	env->recorder = i == 1;
	env->probes_set = true;
	return 0;
}

static int parse_ringbuf(const char *arg, struct env *env)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	/* The kernel wants a power-of-two number of pages. */
	if (end == arg || *end || v < 1 || v > 2048 || (v & (v - 1))) {
		log_err("--ringbuf-size wants a power of two in MiB (1..2048), "
			"not '%s'",
			arg);
		return -1;
	}
	env->ringbuf_mb = v;
	return 0;
}

static int parse_depth(const char *arg, struct env *env)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (end == arg || *end || v < 1 || v > 128) {
		log_err("--py-depth wants a number of frames from 1 to 128, "
			"not '%s'",
			arg);
		return -1;
	}
	env->py_depth = v;
	return 0;
}

/* The order of enum snap_format. */
static const char *const format_names[] = { "snapshot", "json", "folded",
					    "html", "pprof" };

static int parse_format(const char *arg, struct env *env)
{
	int i = args__choice("--format", arg, format_names,
			     sizeof(format_names) / sizeof(format_names[0]));

	if (i < 0)
		return -1;
	env->format = (enum snap_format)i;
	env->format_set = true;
	return 0;
}

/* -o peak.html without --format: the suffix says what the user wants. */
static void format_from_output(struct env *env)
{
	const char *o = env->output;

	if (env->format_set || !o)
		return;
	if (text__ends_with(o, ".html") || text__ends_with(o, ".htm"))
		env->format = SNAP_HTML;
	else if (text__ends_with(o, ".folded"))
		env->format = SNAP_FOLDED;
	else if (text__ends_with(o, ".json"))
		env->format = SNAP_JSON; /* plain JSON asked for: expanded */
	else if (text__ends_with(o, ".pb.gz"))
		env->format = SNAP_PPROF;
}

static int parse_one(int c, const char *arg, struct env *env)
{
	switch (c) {
	case 'p':
		return parse_pid(arg, env);
	case 'c':
		if (env->ncomms == MAX_COMMS || !*arg) {
			log_err("--comm wants a name (at most %d)", MAX_COMMS);
			return -1;
		}
		env->comms[env->ncomms++] = arg;
		return 0;
	case 'o':
		env->output = arg;
		return 0;
	case 'f':
		return parse_format(arg, env);
	case 'D':
		env->snapshot_dir = arg;
		env->snapshot_dir_set = true;
		return 0;
	case 'i':
		return parse_seconds("--interval", arg, &env->interval);
	case 'd':
		return parse_seconds("--duration", arg, &env->duration);
	case 'b':
		env->batch = true;
		return 0;
	case OPT_RINGBUF:
		return parse_ringbuf(arg, env);
	case 'v':
		env->verbose++;
		return 0;
	case OPT_FLOOR:
		env->bench_floor = true;
		return 0;
	case OPT_PROBES:
		return parse_probes(arg, env);
	case OPT_PYDEPTH:
		return parse_depth(arg, env);
	case OPT_PYMALLOC:
		env->pymalloc = true;
		return 0;
	case OPT_ALL_SNAPSHOTS:
		env->all_snapshots = true;
		return 0;
	case OPT_NO_CENSUS:
		env->no_census = true;
		return 0;
	case OPT_EVERY:
		return parse_seconds("--snapshot-every", arg,
				     &env->snapshot_every);
	default:
		log_err("unknown option; try --help");
		return -1;
	}
}

/* Cross-option rules, checked once everything is parsed. */
static int validate(struct env *env)
{
	if (!env->command && !env->npids && !env->ncomms) {
		log_err("nothing to trace: give --pid PID, --comm NAME or -- "
			"CMD (see --help)");
		return -1;
	}
	if (env->output && !env->command) {
		log_err("-o/--output names the snapshot of a command started "
			"with '--'; use --snapshot-dir with --pid/--comm");
		return -1;
	}
	/* Probing CPython's allocator, or the bare probes: uprobes only. */
	if (env->probes_set && env->recorder &&
	    (env->pymalloc || env->bench_floor)) {
		log_err("%s needs --probes uprobe",
			env->pymalloc ? "--pymalloc" : "--bench-floor");
		return -1;
	}
	if (!env->probes_set)
		env->recorder = !env->pymalloc && !env->bench_floor;
	format_from_output(env);
	return 0;
}

int options__parse(int argc, char **argv, struct env *env)
{
	int c;

	memset(env, 0, sizeof(*env));
	env->interval = 1.0;
	env->ringbuf_mb = 32;
	env->py_depth = 64;
	env->snapshot_dir = ".";
	optind = 0; /* glibc: 0 also drops the state of a previous scan */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+p:c:o:f:D:i:d:bvh", longopts,
				NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return 1;
		}
		if (c == OPT_VERSION) {
			puts("memprof-bpf " MEMPROF_VERSION);
			return 1;
		}
		if (c == '?' || c == ':') {
			log_err("bad option '%s'; try --help",
				argv[optind - 1]);
			return -1;
		}
		if (parse_one(c, optarg, env))
			return -1;
	}
	if (optind < argc) {
		if (strcmp(argv[optind - 1], "--") != 0) {
			log_err("unexpected argument '%s'; a command goes "
				"after '--'",
				argv[optind]);
			return -1;
		}
		env->command = &argv[optind];
	}
	return validate(env);
}
