// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "graph.h"
#include "lib/args.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "names.h"
#include "procs/elfsym.h"
#include "procs/procs.h"
#include "pyread.h"
#include "roots.h"
#include "server/ask.h"
#include "walk.h"

#define MAX_TARGETS 64
#define MAX_NAMES 16
/* malloc's header and page rounding (names.py's BLOCK_SLACK) */
#define BLOCK_SLACK (64u << 10)

static const char names_usage[] =
	"usage: memprof-bpf names (--pid PID | --comm NAME)... [options]\n"
	"Which names of a running Python (a notebook kernel) hold its "
	"memory,\nread from outside: no extension, no restart, even while a "
	"cell runs.\n\n"
	"  -p, --pid PID          a Python process (repeatable)\n"
	"  -c, --comm NAME        every process whose command or command "
	"line\n"
	"                         names NAME (ipykernel: every kernel)\n"
	"  -f, --format FMT       text (default) or json\n"
	"  -n, --top N            rows per process (default 20; 0: all)\n"
	"      --min-bytes B      leave out names reaching less (default "
	"1024)\n"
	"      --budget S         seconds for reading each process (default "
	"1.5):\n"
	"                         figures of a cut walk are lower bounds "
	"(marked >=)\n"
	"      --depth N          references followed from a name (default "
	"100)\n"
	"      --hints N          rows that get a hint (default 5)\n"
	"      --graph FILE       also write the graph read (JSON) to FILE\n"
	"  -v, --verbose          say how long each read took\n"
	"  -h, --help             this help\n";

struct names_opts {
	pid_t pids[MAX_TARGETS];
	int npids;
	const char *comms[MAX_NAMES];
	int ncomms;
	int json; /* --format json */
	long top, min_bytes, hints;
	double budget;
	long depth;
	const char *graph; /* --graph FILE */
};

/* ---- the command line ------------------------------------------------------ */

/* A number in [lo, hi], or -1 after one error line naming the flag. */
static int number(const char *flag, const char *arg, double lo, double hi,
		  double *v)
{
	char *end;

	errno = 0;
	*v = strtod(arg, &end);
	if (errno || end == arg || *end || *v < lo || *v > hi) {
		log_err("names: %s wants a number from %g to %g, not '%s'",
			flag, lo, hi, arg);
		return -1;
	}
	return 0;
}

static int add_pid(struct names_opts *o, const char *arg)
{
	pid_t pid;

	if (args__pid(arg, &pid))
		return -1;
	if (o->npids == MAX_TARGETS) {
		log_err("names: at most %d --pid", MAX_TARGETS);
		return -1;
	}
	o->pids[o->npids++] = pid;
	return 0;
}

static int add_comm(struct names_opts *o, const char *arg)
{
	if (o->ncomms == MAX_NAMES || !*arg) {
		log_err("names: --comm wants a name (at most %d)", MAX_NAMES);
		return -1;
	}
	o->comms[o->ncomms++] = arg;
	return 0;
}

/* One option; -1 after its error line. */
static int option(struct names_opts *o, int c, const char *arg)
{
	static const char *const formats[] = { "text", "json" };
	double v;

	switch (c) {
	case 'p':
		return add_pid(o, arg);
	case 'c':
		return add_comm(o, arg);
	case 'f':
		o->json = args__choice("--format", arg, formats, 2);
		return o->json < 0 ? -1 : 0;
	case 'n':
		if (number("--top", arg, 0, 1e6, &v))
			return -1;
		o->top = (long)v;
		return 0;
	case 'm':
		if (number("--min-bytes", arg, 0, 1e18, &v))
			return -1;
		o->min_bytes = (long)v;
		return 0;
	case 'b':
		return number("--budget", arg, 0.01, 3600, &o->budget);
	case 'd':
		if (number("--depth", arg, 1, 10000, &v))
			return -1;
		o->depth = (long)v;
		return 0;
	case 'g':
		o->graph = arg;
		return 0;
	case 'H':
		if (number("--hints", arg, 0, 1e6, &v))
			return -1;
		o->hints = (long)v;
		return 0;
	case 'v':
		log_verbosity++;
		return 0;
	default:
		return -1;
	}
}

/* Options, no operands. -1 (error), 1 (help) or 0. */
static int parse_args(int argc, char **argv, struct names_opts *o)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "comm", required_argument, NULL, 'c' },
		{ "format", required_argument, NULL, 'f' },
		{ "top", required_argument, NULL, 'n' },
		{ "min-bytes", required_argument, NULL, 'm' },
		{ "budget", required_argument, NULL, 'b' },
		{ "depth", required_argument, NULL, 'd' },
		{ "graph", required_argument, NULL, 'g' },
		{ "hints", required_argument, NULL, 'H' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*o = (struct names_opts){ .top = 20,
				  .min_bytes = 1024,
				  .hints = 5,
				  .budget = 1.5,
				  .depth = 100 };
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hvp:c:f:n:", longopts, NULL)) !=
	       -1) {
		if (c == 'h') {
			fputs(names_usage, stdout);
			return 1;
		}
		if (c == '?' || c == ':') {
			log_err("names: bad option '%s'; try names --help",
				argv[optind - 1]);
			return -1;
		}
		if (option(o, c, optarg))
			return -1;
	}
	if (optind < argc) {
		log_err("names: unexpected '%s'; try names --help",
			argv[optind]);
		return -1;
	}
	if (!o->npids && !o->ncomms) {
		log_err("names: say which process: --pid PID or --comm NAME");
		return -1;
	}
	return 0;
}

/* ---- the processes ------------------------------------------------------- */

struct targets {
	const struct names_opts *o;
	pid_t pids[MAX_TARGETS];
	int n;
};

/* A --comm match (not this process, nor a thread's own entry). */
static int match_comm(pid_t pid, void *ctx)
{
	struct targets *t = ctx;
	char comm[64], cmdline[4096];
	ssize_t len;
	int i;

	if (pid == getpid() || t->n == MAX_TARGETS ||
	    procs__read_comm(pid, comm, sizeof(comm)))
		return 0;
	len = procs__read_cmdline(pid, cmdline, sizeof(cmdline));
	for (i = 0; i < t->o->ncomms; i++)
		if (procs__match(t->o->comms[i], comm, cmdline,
				 len > 0 ? (size_t)len : 0)) {
			t->pids[t->n++] = pid;
			break;
		}
	return 0;
}

/* --pid's processes, then --comm's; -1 after one line when none. */
static int find_targets(const struct names_opts *o, struct targets *t)
{
	int i;

	t->o = o;
	t->n = 0;
	for (i = 0; i < o->npids; i++)
		t->pids[t->n++] = o->pids[i];
	if (o->ncomms)
		procs__each(match_comm, t);
	if (!t->n) {
		log_err("names: no process matches --comm %s", o->comms[0]);
		return -1;
	}
	return 0;
}

/* "3.11.2": Py_Version (3.11+), else the minor the runtime was found as. */
static void python_version(const struct pyread *r, char *buf, size_t size)
{
	uint64_t vaddr, symsize;
	uint32_t hex = 0;

	if (!elfsym__object(r->rt.path, "Py_Version", &vaddr, &symsize) &&
	    !pyread__read(r, r->rt.bias + vaddr, &hex, sizeof(hex)) &&
	    (hex >> 24) == 3)
		snprintf(buf, size, "3.%u.%u", (hex >> 16) & 0xff,
			 (hex >> 8) & 0xff);
	else
		snprintf(buf, size, "%d.%d", r->rt.major, r->rt.minor);
}

/*
 * Does the agent's block hold the buffer and not much more? (A pool or an
 * arena would say nothing about this object: names.py's _apply_agent.)
 */
static bool block_fits(const struct gnode *n, const struct ask_block *b)
{
	double est = (double)n->buf_bytes;

	return b->found && b->start <= n->buf && n->buf < b->start + b->size &&
	       b->size >= est * 0.9 && b->size <= est * 1.1 + BLOCK_SLACK;
}

/* Node i's buffer is the agent's block b: its size and its cell. */
static void take_block(struct walk *w, uint32_t i, const struct ask_block *b)
{
	struct gnode *n = &w->nodes[i];
	struct gblock *g = &w->blocks[w->nblocks];

	n->size += b->size - n->buf_bytes;
	n->buf_bytes = b->size;
	n->block = (int32_t)w->nblocks++;
	g->start = b->start;
	g->size = b->size;
	snprintf(g->cell, sizeof(g->cell), "%s", b->cell);
	snprintf(g->where, sizeof(g->where), "%s", b->where);
}

/*
 * Sizes from a running agent that traces pid: the block holding each
 * buffer (traced, or found by the census), and the cell that allocated
 * it. Without one the headers' sizes stay, and the graph says so.
 */
static void agent_sizes(struct walk *w, pid_t pid, struct graph_meta *m)
{
	struct ask_block *blocks = NULL;
	uint64_t *addrs = NULL, live;
	uint32_t *who = NULL;
	size_t i, n = 0;

	if (ask__live(NULL, pid, &live))
		return; /* no agent, or it does not trace pid */
	m->live_bytes = (int64_t)live;
	addrs = malloc((w->nnodes + 1) * sizeof(*addrs));
	who = malloc((w->nnodes + 1) * sizeof(*who));
	for (i = 0; addrs && who && i < w->nnodes; i++)
		if (w->nodes[i].buf)
			who[n] = (uint32_t)i, addrs[n++] = w->nodes[i].buf;
	blocks = calloc(n + 1, sizeof(*blocks));
	w->blocks = calloc(n + 1, sizeof(*w->blocks));
	if (blocks && w->blocks && addrs && who &&
	    !ask__lookup(NULL, pid, addrs, n, blocks)) {
		m->estimated = false;
		for (i = 0; i < n; i++)
			if (block_fits(&w->nodes[who[i]], &blocks[i]))
				take_block(w, who[i], &blocks[i]);
	}
	free(blocks);
	free(addrs);
	free(who);
}

/* Why pid cannot be read, in one line; exit code 2. */
static int refuse(pid_t pid, int err, const struct pyread *r)
{
	if (err == -ESRCH || !procs__alive(pid))
		log_err("names: no process %d (or it exited)", (int)pid);
	else if (err == -ENOTSUP && r->rt.why[0])
		log_err("names: pid %d: this Python cannot be read: %s",
			(int)pid, r->rt.why);
	else if (err == -ENOTSUP)
		log_err("names: pid %d: Python %d.%d cannot be read "
			"(3.8-3.15, not free-threaded)",
			(int)pid, r->rt.major, r->rt.minor);
	else if (err == -EACCES || err == -EPERM)
		log_err("names: pid %d: cannot read its memory (run as root)",
			(int)pid);
	else
		log_err("names: pid %d is not a Python process", (int)pid);
	return 2;
}

/* Read one process into its graph on out. 0, or 2 after one line. */
static int read_process(pid_t pid, const struct names_opts *o, FILE *out,
			bool first)
{
	uint64_t t0 = now_monotonic_ns(), ns;
	struct graph_meta m = { .live_bytes = -1, .estimated = true };
	struct pyread r;
	struct walk w;
	int err;

	if (!procs__alive(pid))
		return refuse(pid, -ESRCH, &r);
	err = pyread__open(&r, pid);
	if (err) {
		pyread__close(&r);
		return refuse(pid, err, &r);
	}
	err = pyread__main_dict(&r, &ns);
	if (err) {
		if (procs__alive(pid))
			log_err("names: pid %d has no __main__ module yet "
				"(Python is starting)",
				(int)pid);
		else
			refuse(pid, -ESRCH, &r);
		pyread__close(&r);
		return 2;
	}
	python_version(&r, m.python, sizeof(m.python));
	err = walk__init(&w, &r, (uint64_t)(o->budget * 1e9), o->depth);
	if (!err)
		err = roots__read(&w, ns);
	if (err) {
		if (!procs__alive(pid))
			refuse(pid, -ESRCH, &r);
		else
			log_err("names: pid %d: its names cannot be read (%s)",
				(int)pid, strerror(-err));
		walk__free(&w);
		pyread__close(&r);
		return 2;
	}
	walk__run(&w);
	roots__summaries(&w);
	agent_sizes(&w, pid, &m);
	m.elapsed = (now_monotonic_ns() - t0) / 1e9;
	if (!first)
		fputc(',', out);
	err = graph__write(out, &w, pid, &m);
	log_info("names: pid %d: %zu objects, %zu roots, %llu lines read, "
		 "%.3f s",
		 (int)pid, w.nnodes, w.nroots,
		 (unsigned long long)r.cache->reads, m.elapsed);
	walk__free(&w);
	pyread__close(&r);
	return err ? 2 : 0;
}

/* ---- the table ------------------------------------------------------------ */

/* The python/ folder next to this binary, when it holds the package. */
static void package_path(char *buf, size_t size)
{
	static const char pkg[] = "/memprof_bpf/names.py";

	if (procs__beside_self("python/memprof_bpf/names.py", buf, size))
		buf[0] = '\0';
	else
		buf[strlen(buf) - (sizeof(pkg) - 1)] = '\0'; /* .../python */
}

/* $MEMPROF_BPF_PYTHON, Debian's python3, or python3 on PATH. */
static const char *python_program(void)
{
	const char *p = getenv("MEMPROF_BPF_PYTHON");

	if (p && *p)
		return p;
	return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3"
						     : "python3";
}

/* The summarizer's environment: python/ first on PYTHONPATH. */
static void set_pythonpath(void)
{
	char pkg[PATH_MAX], *path;
	const char *old = getenv("PYTHONPATH");

	package_path(pkg, sizeof(pkg));
	if (!pkg[0])
		return;
	if (old && *old && asprintf(&path, "%s:%s", pkg, old) > 0) {
		setenv("PYTHONPATH", path, 1);
		free(path);
	} else {
		setenv("PYTHONPATH", pkg, 1);
	}
}

/* python3 -m memprof_bpf.names reading the graphs on its stdin. */
static pid_t start_summarizer(const struct names_opts *o, FILE **in)
{
	char top[32], min[32], hints[32];
	const char *py = python_program();
	int fds[2];
	pid_t pid;

	snprintf(top, sizeof(top), "%ld", o->top);
	snprintf(min, sizeof(min), "%ld", o->min_bytes);
	snprintf(hints, sizeof(hints), "%ld", o->hints);
	if (pipe2(fds, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(fds[0], 0);
		set_pythonpath();
		execlp(py, py, "-m", "memprof_bpf.names", "--graph", "-",
		       "--format", o->json ? "json" : "text", "-n", top,
		       "--min-bytes", min, "--hints", hints, (char *)NULL);
		log_err("names: cannot run %s (%s): set MEMPROF_BPF_PYTHON "
			"to a python3",
			py, strerror(errno));
		_exit(2);
	}
	close(fds[0]);
	if (pid < 0) {
		close(fds[1]);
		return -1;
	}
	*in = fdopen(fds[1], "w");
	return pid;
}

/* The summarizer's exit code (2 if it died). */
static int wait_summarizer(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 2;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

/* Each process's graph into f, as one JSON list. The worst exit code. */
static int read_all(const struct targets *t, const struct names_opts *o,
		    FILE *f, int *read)
{
	int i, code = 0;

	*read = 0;
	fputc('[', f);
	for (i = 0; i < t->n; i++) {
		int c = read_process(t->pids[i], o, f, *read == 0);

		if (!c)
			(*read)++;
		code = c > code ? c : code;
	}
	fputs("]\n", f);
	return code;
}

/* -v: how long the reads and the table took, and their peak memory. */
static void log_costs(uint64_t t0, uint64_t t_read)
{
	struct rusage self, kids;
	uint64_t now = now_monotonic_ns();

	if (log_verbosity < 1 || getrusage(RUSAGE_SELF, &self) ||
	    getrusage(RUSAGE_CHILDREN, &kids))
		return;
	log_info("names: read %.3f s, table %.3f s; peak RSS: reader %.1f "
		 "MiB, table %.1f MiB",
		 (t_read - t0) / 1e9, (now - t_read) / 1e9,
		 self.ru_maxrss / 1024.0, kids.ru_maxrss / 1024.0);
}

int names__main(int argc, char **argv)
{
	struct names_opts o;
	struct targets t;
	FILE *f;
	char *doc = NULL;
	size_t len = 0;
	int err, read, code, sum;
	uint64_t t0, t_read;
	pid_t py;

	err = parse_args(argc, argv, &o);
	if (err)
		return err > 0 ? 0 : 2;
	if (geteuid() != 0) {
		log_err("names: must run as root to read another process "
			"(try: sudo memprof-bpf names ...)");
		return 2;
	}
	if (find_targets(&o, &t))
		return 2;
	f = open_memstream(&doc, &len);
	if (!f)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	t0 = now_monotonic_ns();
	code = read_all(&t, &o, f, &read);
	fclose(f);
	t_read = now_monotonic_ns();
	if (o.graph && (!(f = fopen(o.graph, "w")) ||
			fwrite(doc, 1, len, f) != len || fclose(f))) {
		log_err("names: cannot write %s: %s", o.graph, strerror(errno));
		code = 2;
	}
	if (read) {
		py = start_summarizer(&o, &f);
		if (py < 0 || !f) {
			log_err("names: cannot start python3: %s",
				strerror(errno));
			free(doc);
			return 2;
		}
		fwrite(doc, 1, len, f);
		fclose(f);
		sum = wait_summarizer(py);
		code = sum > code ? sum : code;
	}
	free(doc);
	log_costs(t0, t_read);
	return code;
}
