// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "lib/loop.h"
#include "unit.h"

#define MS 1000000ULL

/* What the callbacks saw, in the order they ran. */
struct seen {
	int n;
	int what[16];
	unsigned events[16];
};

static void note(struct seen *s, int what, unsigned events)
{
	cr_assert_lt(s->n, 16);
	s->what[s->n] = what;
	s->events[s->n++] = events;
}

static void on_read(struct loop *l, int fd, unsigned events, void *data)
{
	char c;

	(void)l;
	if (!(events & LOOP_HUP))
		cr_assert_eq(read(fd, &c, 1), 1);
	note(data, fd, events);
}

static void on_event(struct loop *l, int fd, unsigned events, void *data)
{
	(void)l;
	note(data, fd, events);
}

/* A readable pipe calls back once per byte waiting; nothing, no call. */
Test(loop, fd_callbacks_fire, .timeout = 10)
{
	struct loop *l = loop__new();
	struct seen s = { 0 };
	int p[2];

	cr_assert_not_null(l);
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(loop__add_fd(l, p[0], LOOP_IN, on_read, &s), 0);
	cr_assert_eq(loop__add_fd(l, p[0], LOOP_IN, on_read, &s), -EEXIST);
	cr_assert_eq(loop__run_once(l, 0), 0);
	cr_assert_eq(write(p[1], "ab", 2), 2);
	cr_assert_eq(loop__run_once(l, 1000), 1);
	cr_assert_eq(loop__run_once(l, 1000), 1);
	cr_assert_eq(loop__run_once(l, 0), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.what[0], p[0]);
	cr_assert_eq(s.events[0], LOOP_IN);
	/* The writer's end hung up: the reader hears it. */
	close(p[1]);
	cr_assert_eq(loop__run_once(l, 1000), 1);
	cr_assert(s.events[2] & LOOP_HUP);
	loop__del_fd(l, p[0]);
	close(p[0]);
	loop__free(l);
}

/* LOOP_OUT is delivered only while it is asked for. */
Test(loop, writable_only_while_watched, .timeout = 10)
{
	struct loop *l = loop__new();
	struct seen s = { 0 };
	int sp[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	cr_assert_eq(loop__add_fd(l, sp[0], 0, on_event, &s), 0);
	cr_assert_eq(loop__run_once(l, 0), 0);
	cr_assert_eq(loop__set_fd(l, sp[0], LOOP_OUT), 0);
	cr_assert_eq(loop__run_once(l, 1000), 1);
	cr_assert_eq(s.events[0], LOOP_OUT);
	cr_assert_eq(loop__set_fd(l, sp[0], LOOP_IN), 0);
	cr_assert_eq(loop__run_once(l, 0), 0);
	cr_assert_eq(loop__set_fd(l, 1000, LOOP_IN), -ENOENT);
	loop__free(l);
	close(sp[0]);
	close(sp[1]);
}

struct timed {
	struct loop *l;
	struct seen *s;
	int what;
	int stop_after; /* calls; 0: never stop */
	int calls;
};

static void on_timer(struct loop *l, void *data)
{
	struct timed *t = data;

	note(t->s, t->what, 0);
	if (++t->calls == t->stop_after)
		loop__stop(l);
}

/* Timers added out of order fire by deadline; the last one stops the run. */
Test(loop, timers_fire_in_order, .timeout = 10)
{
	struct loop *l = loop__new();
	struct seen s = { 0 };
	struct timed t30 = { l, &s, 30, 0, 0 }, t10 = { l, &s, 10, 0, 0 },
		     t20 = { l, &s, 20, 0, 0 }, t40 = { l, &s, 40, 1, 0 };
	uint64_t start = now_monotonic_ns();

	cr_assert_gt(loop__add_timer(l, 30 * MS, 0, on_timer, &t30), 0);
	cr_assert_gt(loop__add_timer(l, 10 * MS, 0, on_timer, &t10), 0);
	cr_assert_gt(loop__add_timer(l, 20 * MS, 0, on_timer, &t20), 0);
	cr_assert_gt(loop__add_timer(l, 40 * MS, 0, on_timer, &t40), 0);
	cr_assert_eq(loop__run(l), 0);
	cr_assert_geq(now_monotonic_ns() - start, 40 * MS);
	cr_assert_eq(s.n, 4);
	cr_assert_eq(s.what[0], 10);
	cr_assert_eq(s.what[1], 20);
	cr_assert_eq(s.what[2], 30);
	cr_assert_eq(s.what[3], 40);
	loop__free(l);
}

/* Several due in one turn still go by deadline, each once. */
Test(loop, timers_due_together_keep_their_order, .timeout = 10)
{
	struct loop *l = loop__new();
	struct seen s = { 0 };
	struct timed a = { l, &s, 3, 0, 0 }, b = { l, &s, 1, 0, 0 },
		     c = { l, &s, 2, 0, 0 };

	cr_assert_gt(loop__add_timer(l, 3 * MS, 0, on_timer, &a), 0);
	cr_assert_gt(loop__add_timer(l, 1 * MS, 0, on_timer, &b), 0);
	cr_assert_gt(loop__add_timer(l, 2 * MS, 0, on_timer, &c), 0);
	usleep(10000);
	cr_assert_eq(loop__run_once(l, 0), 3);
	cr_assert_eq(s.what[0], 1);
	cr_assert_eq(s.what[1], 2);
	cr_assert_eq(s.what[2], 3);
	cr_assert_eq(loop__run_once(l, 0), 0); /* once each */
	loop__free(l);
}

/* A periodic timer keeps firing until its callback stops the loop. */
Test(loop, stop_ends_run, .timeout = 10)
{
	struct loop *l = loop__new();
	struct seen s = { 0 };
	struct timed t = { l, &s, 1, 3, 0 };

	cr_assert_gt(loop__add_timer(l, 1 * MS, 1 * MS, on_timer, &t), 0);
	cr_assert_not(loop__stopped(l));
	cr_assert_eq(loop__run(l), 0);
	cr_assert(loop__stopped(l));
	cr_assert_eq(t.calls, 3);
	cr_assert_eq(loop__run_once(l, 1000), 0); /* stopped: no wait */
	cr_assert_eq(t.calls, 3);
	loop__free(l);
}

struct deleter {
	struct loop *l;
	struct seen *s;
	int *fds; /* the read ends of two pipes */
	int reused; /* a new pipe's read end, added in the callback */
};

/*
 * Whichever of the two readable pipes comes first deletes and closes the
 * other, then watches a new, empty pipe (its fd may be the number just
 * freed): the other's event, already taken from epoll, must not run.
 */
static void on_first(struct loop *l, int fd, unsigned events, void *data)
{
	struct deleter *d = data;
	int other = fd == d->fds[0] ? d->fds[1] : d->fds[0], p[2];

	note(d->s, fd, events);
	loop__del_fd(l, other);
	close(other);
	cr_assert_eq(pipe(p), 0);
	d->reused = p[0];
	cr_assert_eq(loop__add_fd(l, p[0], LOOP_IN, on_event, d->s), 0);
	loop__del_fd(l, fd); /* its own, too */
}

Test(loop, del_fd_during_callback_is_safe, .timeout = 10)
{
	struct loop *l = loop__new();
	struct seen s = { 0 };
	int a[2], b[2], fds[2];
	struct deleter d = { l, &s, fds, -1 };

	cr_assert_eq(pipe(a), 0);
	cr_assert_eq(pipe(b), 0);
	fds[0] = a[0];
	fds[1] = b[0];
	cr_assert_eq(write(a[1], "x", 1), 1);
	cr_assert_eq(write(b[1], "x", 1), 1);
	cr_assert_eq(loop__add_fd(l, a[0], LOOP_IN, on_first, &d), 0);
	cr_assert_eq(loop__add_fd(l, b[0], LOOP_IN, on_first, &d), 0);
	cr_assert_eq(loop__run_once(l, 1000), 1);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(loop__run_once(l, 0), 0); /* nothing left to say */
	cr_assert_eq(s.n, 1);
	loop__free(l);
}

struct canceller {
	struct loop *l;
	struct seen *s;
	int64_t victim;
};

static void on_cancel(struct loop *l, void *data)
{
	struct canceller *c = data;

	note(c->s, 1, 0);
	loop__del_timer(l, c->victim);
}

/* A timer deleted by another due in the same pass does not fire. */
Test(loop, del_timer_during_callback, .timeout = 10)
{
	struct loop *l = loop__new();
	struct seen s = { 0 };
	struct timed victim = { l, &s, 2, 0, 0 };
	struct canceller c = { l, &s, 0 };
	int64_t first;

	first = loop__add_timer(l, 1 * MS, 0, on_cancel, &c);
	c.victim = loop__add_timer(l, 2 * MS, 0, on_timer, &victim);
	cr_assert_gt(first, 0);
	cr_assert_gt(c.victim, first);
	usleep(5000);
	cr_assert_eq(loop__run_once(l, 0), 1);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(s.what[0], 1);
	loop__del_timer(l, first); /* fired once: ignored */
	cr_assert_eq(loop__run_once(l, 10), 0);
	loop__free(l);
}

static void on_signal(struct loop *l, int signo, void *data)
{
	(void)l;
	note(data, signo, 0);
}

/* A signal is read from the loop, not a handler. */
Test(loop, signals_arrive_as_callbacks, .timeout = 10)
{
	struct loop *l = loop__new();
	struct seen s = { 0 };

	cr_assert_eq(loop__add_signal(l, SIGUSR1, on_signal, &s), 0);
	cr_assert_eq(loop__add_signal(l, SIGUSR2, on_signal, &s), 0);
	cr_assert_eq(loop__add_signal(l, 0, on_signal, &s), -EINVAL);
	raise(SIGUSR2);
	cr_assert_eq(loop__run_once(l, 1000), 1);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(s.what[0], SIGUSR2);
	loop__free(l);
}

/* A child about to exec gets the mask and actions the process had. */
Test(loop, child_signals_restored, .timeout = 10)
{
	struct loop *l = loop__new();
	struct seen s = { 0 };
	sigset_t now;
	int status;
	pid_t pid;

	cr_assert_eq(loop__add_signal(l, SIGUSR1, on_signal, &s), 0);
	cr_assert_eq(sigprocmask(SIG_BLOCK, NULL, &now), 0);
	cr_assert_eq(sigismember(&now, SIGUSR1), 1);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		loop__child_signals();
		sigprocmask(SIG_BLOCK, NULL, &now);
		_exit(sigismember(&now, SIGUSR1) ? 1 : 0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	loop__free(l);
}
