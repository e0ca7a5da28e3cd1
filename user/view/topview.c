// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "memprof.h"
#include "memprof.skel.h"
#include "procs/procs.h"
#include "output/snapshot.h"
#include "namespane.h"
#include "topmodel.h"
#include "topview.h"

#define MAX_STACKS 200 /* rows of the stacks view */
#define LINE_MAX_COLS 400 /* wider terminals get this much */
#define MSG_SECONDS 8 /* how long a message stays in the status line */
#define KEYS_PER_TURN 64 /* bound the work one turn can be asked for */
/*
 * Keys are read when the terminal has some; the captured log is looked
 * at and a changed screen drawn 20 times a second, which is all a reader
 * needs: the view adds no syscalls per event.
 */
#define REDRAW_NS 50000000ULL

enum { C_HOT = 1, C_RUN, C_SPARK, C_MSG, C_HEAD };

struct topview {
	struct agent *a;
	struct loop *loop;
	topview_snapshot_fn *snapshot;
	int64_t redraw_timer;
	bool keys_watched;
	SCREEN *scr;
	bool utf8, color, paused, help, dirty;
	enum top_view view;
	enum top_sort sort[3];
	bool at_peak;
	pid_t pid; /* the selected process */
	int32_t run; /* stacks of this cell run, or TOP_ANY_RUN */
	char run_label[64];
	int sel[3], top[3]; /* selected row and first shown, per view */
	int64_t sel_key[3]; /* what is selected: run, site or pid */
	bool sel_moved[3]; /* by the user: follow the row, else stay on top */
	/* The copies drawn: built by the model between drains. */
	struct top_model model;
	struct top_stats stats;
	struct top_proc_row *procs, bar;
	ssize_t nprocs;
	bool have_bar;
	struct top_history hist;
	struct top_cell_row *cells;
	ssize_t ncells;
	struct top_stack_row *stacks;
	ssize_t nstacks;
	char msg[4400];
	uint64_t msg_ns;
	/* stderr and a->out while the screen is ours */
	FILE *log, *saved_out;
	int saved_err;
	long log_seen;
	uint64_t cpu_prev_us, records_prev;
	int64_t mono_to_real;
	struct names_pane names; /* n: the selected process's names */
	bool names_shown;
};

bool topview__wanted(const struct env *env)
{
	const char *term = getenv("TERM");

	return !env->batch && !env->command && isatty(STDOUT_FILENO) &&
	       isatty(STDIN_FILENO) && term && *term && strcmp(term, "dumb");
}

/* ---- state -------------------------------------------------------------- */

static struct tracee *selected(struct topview *v)
{
	struct tracees *ts = &v->a->procs;
	struct tracee *t = v->pid ? tracees__find(ts, v->pid) : NULL;

	if (!t && ts->len) {
		t = ts->v[0];
		v->pid = t->pid;
	}
	return t;
}

static ssize_t nrows(const struct topview *v)
{
	return v->view == TOP_CELLS    ? v->ncells
	       : v->view == TOP_STACKS ? v->nstacks
				       : v->nprocs;
}

static int64_t row_key(const struct topview *v, ssize_t i)
{
	if (i < 0 || i >= nrows(v))
		return INT64_MIN;
	return v->view == TOP_CELLS    ? v->cells[i].run
	       : v->view == TOP_STACKS ? (int64_t)v->stacks[i].site
				       : v->procs[i].pid;
}

/*
 * After a rebuild the run, site or pid the user moved to stays selected
 * wherever it sorts; untouched, the selection stays on the top row.
 */
static void keep_selection(struct topview *v)
{
	ssize_t i, n = nrows(v);
	int *sel = &v->sel[v->view];

	for (i = 0; v->sel_moved[v->view] && i < n; i++)
		if (row_key(v, i) == v->sel_key[v->view])
			*sel = i;
	if (*sel >= n)
		*sel = n ? n - 1 : 0;
	v->sel_key[v->view] = row_key(v, *sel);
}

static void free_rows(struct topview *v)
{
	free(v->procs);
	free(v->cells);
	topmodel__free_stacks(v->stacks, v->nstacks > 0 ? v->nstacks : 0);
	v->procs = NULL;
	v->cells = NULL;
	v->stacks = NULL;
	v->nprocs = v->ncells = v->nstacks = 0;
}

/* The selected process's bar and sparkline, copied from the rows. */
static void copy_bar(struct topview *v)
{
	struct top_proc *p = topmodel__proc(&v->model, v->pid);
	ssize_t i;

	v->have_bar = false;
	for (i = 0; i < v->nprocs; i++)
		if (v->procs[i].pid == v->pid) {
			v->bar = v->procs[i];
			v->have_bar = true;
		}
	if (p)
		v->hist = p->live;
}

/* Fresh copies of what the current view shows (and the process bar). */
static void rebuild(struct topview *v)
{
	struct tracee *t;
	struct top_sites s;

	free_rows(v);
	t = selected(v);
	v->nprocs = topmodel__procs(&v->a->procs, &v->model, v->sort[TOP_PROCS],
				    &v->procs);
	copy_bar(v);
	if (t && v->view == TOP_CELLS)
		v->ncells = topmodel__cells(&t->heap, &t->sites, &t->cells,
					    v->at_peak, v->sort[TOP_CELLS],
					    &v->cells);
	if (t && v->view == TOP_STACKS) {
		topmodel__sites_of(t, &s);
		v->nstacks = topmodel__stacks(&s, v->at_peak, v->run,
					      v->sort[TOP_STACKS], MAX_STACKS,
					      &v->stacks);
	}
	if (v->nprocs < 0 || v->ncells < 0 || v->nstacks < 0)
		free_rows(v); /* ENOMEM: an empty screen, tried again later */
	keep_selection(v);
	v->dirty = true;
}

static void say(struct topview *v, const char *fmt, const char *arg)
{
	snprintf(v->msg, sizeof(v->msg), fmt, arg);
	v->msg_ns = now_monotonic_ns();
	v->dirty = true;
}

/* The latest line written to the captured stderr, into the status line. */
static void check_log(struct topview *v)
{
	char tail[400], *nl, *line;
	long size;
	size_t n;

	fflush(v->log);
	size = ftell(v->log);
	if (size <= v->log_seen)
		return;
	v->log_seen = size;
	n = size < (long)sizeof(tail) - 1 ? (size_t)size : sizeof(tail) - 1;
	if (pread(fileno(v->log), tail, n, size - n) != (ssize_t)n)
		return;
	tail[n] = '\0';
	while (n && tail[n - 1] == '\n')
		tail[--n] = '\0';
	nl = strrchr(tail, '\n');
	line = nl ? nl + 1 : tail;
	while (*line == ' ')
		line++;
	say(v, "%s", line);
}

/* ---- the agent's own figures --------------------------------------------- */

static uint64_t cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ULL +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static void sample_stats(struct topview *v, double elapsed)
{
	struct agent *a = v->a;
	uint64_t cpu = cpu_us();

	v->stats.now = time(NULL);
	v->stats.nprocs = a->procs.len;
	v->stats.dropped = a->skel ? a->skel->bss->stats.dropped : 0;
	if (elapsed > 0) {
		v->stats.cpu_percent = (cpu - v->cpu_prev_us) / (elapsed * 1e4);
		v->stats.events_per_s =
			(a->records - v->records_prev) / elapsed;
	}
	v->cpu_prev_us = cpu;
	v->records_prev = a->records;
	v->stats.paused = v->paused;
}

void topview__interval(struct topview *v, double elapsed)
{
	if (!v)
		return;
	topmodel__sample(&v->model, &v->a->procs, elapsed, procs__rss_bytes);
	sample_stats(v, elapsed);
	if (!v->paused)
		rebuild(v);
}

/* ---- drawing --------------------------------------------------------------- */

static int width(void)
{
	return COLS < LINE_MAX_COLS ? COLS : LINE_MAX_COLS;
}

static void put(struct topview *v, int y, const char *s, int pair, int attr)
{
	if (y < 0 || y >= LINES)
		return;
	if (v->color && pair)
		attr |= COLOR_PAIR(pair);
	attron(attr);
	mvaddstr(y, 0, s);
	attroff(attr);
}

/* Whole-row highlight for the selection. */
static void highlight(int y)
{
	mvchgat(y, 0, -1, A_REVERSE, 0, NULL);
}

/* Screen column of byte offset off in s (UTF-8 continuation bytes: 0). */
static int column_of(const char *s, size_t off)
{
	int x = 0;
	size_t i;

	for (i = 0; i < off && s[i]; i++)
		x += ((unsigned char)s[i] & 0xc0) != 0x80;
	return x;
}

/* Part of line y from byte offset off, in another colour. */
static void recolor(struct topview *v, int y, const char *s, size_t off,
		    int pair, int attr)
{
	if (off >= strlen(s))
		return;
	if (v->color && pair)
		attr |= COLOR_PAIR(pair);
	attron(attr);
	mvaddstr(y, column_of(s, off), s + off);
	attroff(attr);
}

static void draw_header(struct topview *v)
{
	char buf[LINE_MAX_COLS * 4];
	size_t hot;

	topmodel__header(&v->stats, width(), v->utf8, buf, sizeof(buf), &hot);
	put(v, 0, buf, 0, A_BOLD);
	/* Drops make every figure doubtful: they must stand out. */
	if (v->stats.dropped)
		recolor(v, 0, buf, hot, C_HOT,
			v->color ? A_BOLD : A_BOLD | A_REVERSE);
}

static void draw_bar(struct topview *v)
{
	char l1[LINE_MAX_COLS * 4], l2[LINE_MAX_COLS * 4];
	size_t spark;

	if (!v->have_bar) {
		put(v, 1,
		    v->a->env.ncomms ? "(no traced process yet: waiting "
				       "for a match of --comm)"
				     : "(no traced process)",
		    0, A_DIM);
		return;
	}
	topmodel__proc_bar(&v->bar, &v->hist, v->a->env.interval,
			   v->mono_to_real, width(), v->utf8, l1, l2,
			   sizeof(l1), &spark);
	put(v, 1, l1, 0, A_BOLD);
	put(v, 2, l2, 0, 0);
	recolor(v, 2, l2, spark, C_SPARK, 0);
}

static void draw_tabs(struct topview *v)
{
	static const char *names[] = { "c Cells", "s Stacks", "p Processes" };
	char buf[LINE_MAX_COLS * 4], fit[LINE_MAX_COLS * 4];
	int x = 0, i;

	for (i = 0; i < 3; i++) {
		attrset(i == (int)v->view ? A_REVERSE | A_BOLD : A_NORMAL);
		mvprintw(3, x, " %s ", names[i]);
		x += strlen(names[i]) + 3;
	}
	attrset(A_NORMAL);
	snprintf(buf, sizeof(buf), " sort: %s (o)   %s%s%s",
		 topmodel__sort_name(v->view, v->sort[v->view]),
		 v->view == TOP_PROCS ? ""
		 : v->at_peak	      ? "at the high-water mark (P)"
				      : "live now (P)",
		 v->view == TOP_STACKS && v->run != TOP_ANY_RUN ? "   of " : "",
		 v->view == TOP_STACKS && v->run != TOP_ANY_RUN ? v->run_label
								: "");
	topmodel__fit(buf, width() - x, v->utf8, fit, sizeof(fit));
	mvaddstr(3, x, fit);
}

/* Keep the selection inside [top, top + h). */
static void scroll_to(struct topview *v, int h)
{
	int *top = &v->top[v->view], sel = v->sel[v->view];

	if (sel < *top)
		*top = sel;
	if (sel >= *top + h)
		*top = sel - h + 1;
	if (*top < 0)
		*top = 0;
}

static void draw_cells(struct topview *v, int y0, int h)
{
	char buf[LINE_MAX_COLS * 4];
	int i;

	topmodel__cells_head(v->at_peak, width(), v->utf8, buf, sizeof(buf));
	put(v, y0 - 1, buf, C_HEAD, A_BOLD | A_UNDERLINE);
	if (!v->ncells)
		put(v, y0,
		    "  (no notebook cells in this process: s shows its stacks)",
		    0, A_DIM);
	scroll_to(v, h);
	for (i = v->top[TOP_CELLS]; i < v->ncells && i - v->top[0] < h; i++) {
		const struct top_cell_row *r = &v->cells[i];
		int y = y0 + i - v->top[TOP_CELLS];

		topmodel__cell_line(r, width(), v->utf8, buf, sizeof(buf));
		put(v, y, buf, r->running && r->run >= 0 ? C_RUN : 0,
		    r->current ? A_BOLD : 0);
		if (i == v->sel[TOP_CELLS])
			highlight(y);
	}
}

/*
 * The selected stack's frames from its cell's frame down (the kernel's
 * machinery above it counted in one line), eliding the middle when they
 * do not fit: the innermost frames say who allocated.
 */
static int draw_frames(struct topview *v, const struct top_stack_row *r, int y,
		       int room)
{
	char buf[LINE_MAX_COLS * 4];
	size_t top = topmodel__cell_frame(r), n = r->nframes, i, from;

	if (room <= 0)
		return y;
	if (top) {
		snprintf(buf, sizeof(buf), "    (%zu frames above the cell)",
			 top);
		put(v, y++, buf, 0, A_DIM);
		room--;
	}
	/* Shown: frame top, then the last ones; "..." for the middle. */
	from = n - top > (size_t)room && room > 2 ? n - (room - 2) : top + 1;
	for (i = top; i < n && room > 0; i++, room--) {
		if (i == top + 1 && from > top + 1) {
			snprintf(buf, sizeof(buf), "      ... %zu frames ...",
				 from - i);
			put(v, y++, buf, 0, A_DIM);
			i = from - 1;
			continue;
		}
		topmodel__frame_line(r, i, i - top, width(), v->utf8, buf,
				     sizeof(buf));
		put(v, y++, buf, 0, r->frames[i].native ? A_DIM : 0);
	}
	return y;
}

static void draw_stacks(struct topview *v, int y0, int h)
{
	char buf[LINE_MAX_COLS * 4];
	int *top = &v->top[TOP_STACKS], sel = v->sel[TOP_STACKS], i, y = y0;

	topmodel__stacks_head(v->at_peak, width(), v->utf8, buf, sizeof(buf));
	put(v, y0 - 1, buf, C_HEAD, A_BOLD | A_UNDERLINE);
	if (!v->nstacks)
		put(v, y0, "  (no live allocations here)", 0, A_DIM);
	scroll_to(v, h);
	/* The expanded stack wants its frames below it: start there. */
	if (v->nstacks && sel - *top + 1 + (int)v->stacks[sel].nframes > h)
		*top = sel;
	for (i = *top; i < v->nstacks && y < y0 + h; i++) {
		topmodel__stack_line(&v->stacks[i], width(), v->utf8, buf,
				     sizeof(buf));
		put(v, y, buf, 0, 0);
		if (i == sel) {
			highlight(y);
			y = draw_frames(v, &v->stacks[i], y + 1,
					y0 + h - y - 1);
		} else {
			y++;
		}
	}
}

static void draw_procs(struct topview *v, int y0, int h)
{
	char buf[LINE_MAX_COLS * 4];
	int i;

	topmodel__procs_head(width(), v->utf8, buf, sizeof(buf));
	put(v, y0 - 1, buf, C_HEAD, A_BOLD | A_UNDERLINE);
	scroll_to(v, h);
	for (i = v->top[TOP_PROCS]; i < v->nprocs && i - v->top[2] < h; i++) {
		int y = y0 + i - v->top[TOP_PROCS];

		topmodel__proc_line(&v->procs[i], width(), v->utf8, buf,
				    sizeof(buf));
		put(v, y, buf, 0, v->procs[i].pid == v->pid ? A_BOLD : 0);
		if (i == v->sel[TOP_PROCS])
			highlight(y);
	}
}

static const char *help_text[] = {
	"c  cells of the process      s  its stacks      p  all processes",
	"Up/Down j/k  move     PgUp/PgDn  page     Enter  cell -> its stacks,",
	"                                              process -> its cells",
	"P  live now / at the high-water mark     o  next sort order",
	"w  write snapshots now (paths in the status line)",
	"n  which names hold the selected process's memory (n again: "
	"refresh)",
	"space  pause the refresh     Esc  back     ?  this help",
	"q  quit: the final snapshots are written, tables printed",
	"",
	"untracked = RSS - live: allocated before the agent attached,",
	"allocator fragmentation, code and stacks.",
};

static void draw_help(struct topview *v)
{
	int n = sizeof(help_text) / sizeof(help_text[0]), i;
	int y = 5, w = width() - 4;
	char buf[LINE_MAX_COLS * 4];

	for (i = 0; i < n && y + i + 1 < LINES - 1; i++) {
		topmodel__fit(help_text[i], w, v->utf8, buf, sizeof(buf));
		attron(A_REVERSE);
		mvprintw(y + i, 2, " %-*s", w - 1, buf);
		attroff(A_REVERSE);
	}
}

static void draw_status(struct topview *v)
{
	char buf[LINE_MAX_COLS * 4];
	bool recent = v->msg_ns && now_monotonic_ns() - v->msg_ns <
					   MSG_SECONDS * 1000000000ULL;

	topmodel__fit(recent ? v->msg
			     : "?:help  c/s/p:view  n:names  Enter:drill  "
			       "P:now/peak  o:sort  w:snapshot  space:pause  "
			       "q:quit",
		      width(), v->utf8, buf, sizeof(buf));
	put(v, LINES - 1, buf, recent ? C_MSG : 0, recent ? A_BOLD : A_DIM);
}

/* The names pane: the names command's output, or what it is doing. */
static void draw_names(struct topview *v, int y0, int h)
{
	struct names_pane *p = &v->names;
	char line[LINE_MAX_COLS * 4], buf[LINE_MAX_COLS * 4];
	int i, n = namespane__count(p);

	if (p->top > n - h)
		p->top = n - h > 0 ? n - h : 0;
	if (!p->len) {
		snprintf(line, sizeof(line),
			 p->done ? "names of pid %d: no answer (exit %d)"
				 : "reading the names of pid %d ...",
			 (int)p->pid, p->exit_code);
		put(v, y0, line, 0, A_BOLD);
		return;
	}
	for (i = 0; i < h && namespane__line(p, p->top + i, line, sizeof(line));
	     i++) {
		topmodel__fit(line, width(), v->utf8, buf, sizeof(buf));
		put(v, y0 + i, buf, 0, i == 0 && p->top == 0 ? A_BOLD : 0);
	}
}

static void draw(struct topview *v)
{
	int y0 = 5, h = LINES - y0 - 1;

	erase();
	draw_header(v);
	draw_bar(v);
	draw_tabs(v);
	if (h > 0 && v->names_shown)
		draw_names(v, y0, h);
	else if (h > 0 && v->view == TOP_CELLS)
		draw_cells(v, y0, h);
	else if (h > 0 && v->view == TOP_STACKS)
		draw_stacks(v, y0, h);
	else if (h > 0)
		draw_procs(v, y0, h);
	if (v->help)
		draw_help(v);
	draw_status(v);
	wnoutrefresh(stdscr);
	doupdate();
	v->dirty = false;
}

/* ---- keys ------------------------------------------------------------------ */

/*
 * Each key is a row of the table below: an action and its argument. An
 * action returns true when the rows must be rebuilt.
 */
typedef bool key_fn(struct topview *v, int arg);

enum { ROW = 1, PAGE, ALL }; /* how far a move goes; its sign, which way */

static void move_sel(struct topview *v, int by)
{
	int *sel = &v->sel[v->view], n = nrows(v);

	*sel += by;
	v->sel_moved[v->view] = true;
	if (*sel >= n)
		*sel = n - 1;
	if (*sel < 0)
		*sel = 0;
	v->sel_key[v->view] = row_key(v, *sel);
}

/* Up/Down, PgUp/PgDn, Home/End: by a row, a screen, or all the way. */
static bool move_by(struct topview *v, int by)
{
	int unit = by < 0 ? -by : by;
	int n = unit == ROW    ? 1
		: unit == PAGE ? (LINES > 8 ? LINES - 8 : 1)
			       : (v->names_shown ? namespane__count(&v->names)
						 : nrows(v));

	if (v->names_shown) { /* the pane scrolls */
		v->names.top += by < 0 ? -n : n;
		if (v->names.top < 0)
			v->names.top = 0;
		return false;
	}
	move_sel(v, by < 0 ? -n : n);
	return false;
}

static void switch_to(struct topview *v, enum top_view view)
{
	v->view = view;
	v->help = false;
	v->names_shown = false;
}

/* n: ask again which names hold the selected process's memory. */
static bool show_names(struct topview *v, int arg)
{
	struct tracee *t = selected(v);
	int err;

	(void)arg;
	if (!t) {
		say(v, "%s", "no traced process: no names to read");
		return false;
	}
	v->help = false;
	v->names_shown = true;
	err = namespane__start(&v->names, v->loop, t->pid,
			       LINES > 12 ? LINES - 12 : 5);
	if (err)
		say(v, "cannot read the names: %s", strerror(-err));
	return false;
}

/* c, s, p: a view; s shows the stacks of every cell run. */
static bool show(struct topview *v, int view)
{
	if (view == TOP_STACKS)
		v->run = TOP_ANY_RUN;
	switch_to(v, view);
	return true;
}

/* Enter: a cell's stacks, or a process's cells. */
static bool drill(struct topview *v, int arg)
{
	int sel = v->sel[v->view];

	(void)arg;
	if (v->view == TOP_CELLS && sel < v->ncells) {
		v->run = v->cells[sel].run;
		snprintf(v->run_label, sizeof(v->run_label), "%s",
			 v->cells[sel].label);
		v->sel_moved[TOP_STACKS] = false;
		v->sel[TOP_STACKS] = 0;
		switch_to(v, TOP_STACKS);
	} else if (v->view == TOP_PROCS && sel < v->nprocs) {
		v->pid = v->procs[sel].pid;
		v->sel[TOP_CELLS] = 0;
		v->sel_moved[TOP_CELLS] = false;
		switch_to(v, TOP_CELLS);
	}
	return true;
}

/* Esc: out of a cell's stacks, or out of the help. */
static bool back(struct topview *v, int arg)
{
	(void)arg;
	if (v->help)
		v->help = false;
	else if (v->names_shown)
		v->names_shown = false;
	else if (v->view == TOP_STACKS && v->run != TOP_ANY_RUN)
		switch_to(v, TOP_CELLS);
	return true;
}

/* w: every traced process's snapshot, and where the files went. */
static bool write_snapshots(struct topview *v, int arg)
{
	struct agent *a = v->a;
	unsigned before = a->snapshots_written;
	char what[4300];

	(void)arg;
	v->snapshot(a, "manual");
	fflush(v->log);
	v->log_seen = ftell(v->log); /* its tables are not news */
	if (a->snapshots_written == before) {
		say(v, "%s",
		    a->procs.len ? "no snapshot written (forked processes "
				   "need -D; errors are shown on exit)"
				 : "no traced process: nothing to write");
		return true;
	}
	snprintf(what, sizeof(what), "wrote %u snapshot%s: %s%s",
		 a->snapshots_written - before,
		 a->snapshots_written - before == 1 ? "" : "s",
		 a->last_snapshot,
		 a->snapshots_written - before > 1 ? " (latest)" : "");
	say(v, "%s", what);
	return true;
}

/* q: the loop ends; the final snapshots are written, tables printed. */
static bool quit(struct topview *v, int arg)
{
	(void)arg;
	loop__stop(v->loop);
	return false;
}

/* P, o, space, ?: the switches. */
static bool toggle(struct topview *v, int key)
{
	switch (key) {
	case 'P':
		v->at_peak = !v->at_peak;
		return true;
	case 'o':
		v->sort[v->view] = (v->sort[v->view] + 1) % TOP_NSORT;
		return true;
	case ' ': /* paused: the rows stay as they are */
		v->paused = !v->paused;
		v->stats.paused = v->paused;
		return !v->paused;
	default: /* '?' */
		v->help = !v->help;
		return false;
	}
}

static const struct {
	int key;
	key_fn *act;
	int arg;
} keys[] = {
	{ 'q', quit, 0 },
	{ 'Q', quit, 0 },
	{ 3, quit, 0 }, /* Ctrl-C: raw mode makes it a key */
	{ 'c', show, TOP_CELLS },
	{ 's', show, TOP_STACKS },
	{ 'p', show, TOP_PROCS },
	{ KEY_UP, move_by, -ROW },
	{ 'k', move_by, -ROW },
	{ KEY_DOWN, move_by, ROW },
	{ 'j', move_by, ROW },
	{ KEY_PPAGE, move_by, -PAGE },
	{ KEY_NPAGE, move_by, PAGE },
	{ KEY_HOME, move_by, -ALL },
	{ 'g', move_by, -ALL },
	{ KEY_END, move_by, ALL },
	{ 'G', move_by, ALL },
	{ '\n', drill, 0 },
	{ '\r', drill, 0 },
	{ KEY_ENTER, drill, 0 },
	{ 27, back, 0 }, /* Esc */
	{ KEY_BACKSPACE, back, 0 },
	{ 127, back, 0 },
	{ 'w', write_snapshots, 0 },
	{ 'n', show_names, 0 },
	{ 'P', toggle, 'P' },
	{ 'o', toggle, 'o' },
	{ ' ', toggle, ' ' },
	{ '?', toggle, '?' },
	{ 'h', toggle, '?' },
};

/* One key; true when the rows must be rebuilt. Others (KEY_RESIZE): redraw. */
static bool on_key(struct topview *v, int ch)
{
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].key == ch)
			return keys[i].act(v, keys[i].arg);
	return false;
}

/* The latest log line into the status line; the screen, if it changed. */
static void update_screen(struct topview *v)
{
	check_log(v);
	if (v->names_shown && !v->names.done) { /* its output as it comes */
		namespane__poll(&v->names);
		v->dirty = true;
	}
	if (v->dirty && !loop__stopped(v->loop))
		draw(v);
}

/* The terminal has keys: act on them (never waits), redraw. */
static void on_keys(struct loop *l, int fd, unsigned events, void *data)
{
	struct topview *v = data;
	bool fresh = false;
	int ch, keys = 0;

	(void)fd;
	while (keys < KEYS_PER_TURN && (ch = getch()) != ERR) {
		fresh |= on_key(v, ch);
		v->dirty = true;
		keys++;
	}
	/* Changing what is shown reads fresh figures, even when paused. */
	if (fresh)
		rebuild(v);
	update_screen(v);
	if ((events & LOOP_HUP) && !keys) { /* the terminal is gone */
		loop__del_fd(l, STDIN_FILENO);
		v->keys_watched = false;
	}
}

/* 20 times a second: a line logged meanwhile, rows the interval rebuilt. */
static void on_redraw(struct loop *l, void *data)
{
	(void)l;
	update_screen(data);
}

/* ---- terminal ---------------------------------------------------------------- */

/* stderr and the tables go to a file while ncurses owns the screen. */
static int capture_output(struct topview *v)
{
	v->log = tmpfile();
	if (!v->log)
		return -1;
	fflush(stderr);
	fflush(v->a->out);
	v->saved_err = dup(STDERR_FILENO);
	if (v->saved_err < 0 || dup2(fileno(v->log), STDERR_FILENO) < 0) {
		fclose(v->log);
		return -1;
	}
	v->saved_out = v->a->out;
	v->a->out = v->log;
	return 0;
}

static void release_output(struct topview *v)
{
	char buf[4096];
	size_t n;

	fflush(stderr);
	fflush(v->log);
	dup2(v->saved_err, STDERR_FILENO);
	close(v->saved_err);
	v->a->out = v->saved_out;
	rewind(v->log);
	while ((n = fread(buf, 1, sizeof(buf), v->log)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(v->log);
}

static void init_colors(struct topview *v)
{
	const char *no = getenv("NO_COLOR");

	v->color = has_colors() && !(no && *no);
	if (!v->color)
		return;
	start_color();
	use_default_colors();
	init_pair(C_HOT, COLOR_RED, -1);
	init_pair(C_RUN, COLOR_GREEN, -1);
	init_pair(C_SPARK, COLOR_CYAN, -1);
	init_pair(C_MSG, COLOR_YELLOW, -1);
	init_pair(C_HEAD, COLOR_BLUE, -1);
}

/*
 * raw(): Ctrl-S (XOFF) cannot freeze our output, and Ctrl-Z cannot stop
 * the consumer; Ctrl-C arrives as a key. nodelay(): getch never waits.
 */
static int init_screen(struct topview *v)
{
	setlocale(LC_CTYPE, ""); /* only characters: numbers stay "1.5" */
	v->utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	v->scr = newterm(NULL, stdout, stdin);
	if (!v->scr)
		return -1;
	set_term(v->scr);
	raw();
	noecho();
	nodelay(stdscr, TRUE);
	keypad(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	init_colors(v);
	return 0;
}

/* Keys when the terminal has some; the log and the screen on a timer. */
static int join_loop(struct topview *v)
{
	int err = loop__add_fd(v->loop, STDIN_FILENO, LOOP_IN, on_keys, v);

	v->keys_watched = !err;
	if (!err) {
		v->redraw_timer = loop__add_timer(v->loop, REDRAW_NS, REDRAW_NS,
						  on_redraw, v);
		err = v->redraw_timer < 0 ? -ENOMEM : 0;
	}
	return err;
}

static void leave_loop(struct topview *v)
{
	namespane__stop(&v->names, v->loop);
	if (v->keys_watched)
		loop__del_fd(v->loop, STDIN_FILENO);
	v->keys_watched = false;
	loop__del_timer(v->loop, v->redraw_timer);
	v->redraw_timer = 0;
}

struct topview *topview__open(struct agent *a, struct loop *loop,
			      topview_snapshot_fn *snapshot)
{
	struct topview *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->a = a;
	v->loop = loop;
	v->snapshot = snapshot;
	v->run = TOP_ANY_RUN;
	v->mono_to_real = snapshot__mono_to_real();
	namespane__init(&v->names);
	v->cpu_prev_us = cpu_us();
	v->records_prev = a->records;
	topmodel__init(&v->model);
	if (join_loop(v) || init_screen(v) || capture_output(v)) {
		leave_loop(v);
		if (v->scr) {
			endwin();
			delscreen(v->scr);
		}
		log_warn("cannot open the terminal view (TERM=%s): line "
			 "output instead",
			 getenv("TERM"));
		free(v);
		return NULL;
	}
	sample_stats(v, 0);
	topmodel__sample(&v->model, &a->procs, 0, procs__rss_bytes);
	rebuild(v);
	draw(v);
	return v;
}

void topview__close(struct topview *v)
{
	if (!v)
		return;
	leave_loop(v);
	endwin();
	delscreen(v->scr);
	release_output(v);
	free_rows(v);
	topmodel__free(&v->model);
	free(v);
}
