/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The agent's one event loop, redis ae.c's idea: a module registers the
 * file descriptors, timers and signals it cares about, each with its own
 * callback and data, and the loop knows nothing of what they are. A new
 * socket or timer is one call from its own module. One thread; callbacks
 * must not block (a slow peer waits in its own buffer, not in the loop).
 * epoll inside; signals arrive through one signalfd, not handlers.
 *
 *   l = loop__new();
 *   loop__add_fd(l, fd, LOOP_IN, on_readable, data);
 *   loop__add_timer(l, 100 ms, 100 ms, on_tick, data);
 *   loop__add_signal(l, SIGINT, on_stop, data);
 *   loop__run(l);             returns once some callback called loop__stop
 */
#ifndef MEMPROF_LOOP_H
#define MEMPROF_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;

/* What a file descriptor is watched for, and what fired. */
enum {
	LOOP_IN = 1 << 0, /* readable, or a listening socket's new client */
	LOOP_OUT = 1 << 1, /* writable */
	/* Fired only: hung up or in error, with the IN and OUT watched. */
	LOOP_HUP = 1 << 2,
};

typedef void loop_fd_fn(struct loop *l, int fd, unsigned events, void *data);
typedef void loop_timer_fn(struct loop *l, void *data);
typedef void loop_signal_fn(struct loop *l, int signo, void *data);

/* NULL (errno set) when epoll cannot be had. */
struct loop *loop__new(void);
/* Registrations are dropped; the signals taken stay blocked (see below). */
void loop__free(struct loop *l);

/*
 * Watch fd for events (LOOP_IN, LOOP_OUT, or 0 for neither, for now);
 * fn(l, fd, fired, data) runs each turn while they hold (level-triggered).
 * 0, -EEXIST (already watched) or -errno. Delete before closing fd.
 */
int loop__add_fd(struct loop *l, int fd, unsigned events, loop_fd_fn *fn,
		 void *data);
/* Watch fd for other events (LOOP_OUT, say, only while output waits). */
int loop__set_fd(struct loop *l, int fd, unsigned events);
/*
 * Forget fd. Safe inside any callback, fd's own included: no event of fd
 * taken in the same turn is delivered after.
 */
void loop__del_fd(struct loop *l, int fd);

/*
 * fn(l, data) after after_ns, then every period_ns (0: once). A late
 * periodic timer fires once and keeps its period from then on, it does
 * not catch up. Due timers fire in order of their deadlines. Returns the
 * timer's id (> 0) or -ENOMEM.
 */
int64_t loop__add_timer(struct loop *l, uint64_t after_ns, uint64_t period_ns,
			loop_timer_fn *fn, void *data);
/* Cancel a timer; an id that fired (once) or was deleted is ignored. */
void loop__del_timer(struct loop *l, int64_t id);

/*
 * fn(l, signo, data) from the loop when signo arrives. The signal is
 * blocked and read from a signalfd: add it before starting threads
 * (they inherit the mask), and it stays blocked for the life of the
 * process, so one arriving after the loop has ended waits, harmless.
 * 0 or -errno.
 */
int loop__add_signal(struct loop *l, int signo, loop_signal_fn *fn, void *data);
/*
 * In a child forked to exec another program: the signals the loops took
 * back to their default action, and the signal mask as it was before.
 */
void loop__child_signals(void);

/* End loop__run after the current callback: no other runs this turn. */
void loop__stop(struct loop *l);
bool loop__stopped(const struct loop *l);
/*
 * One turn: wait for an fd event or the next timer, at most max_wait_ms
 * (-1: no limit but the timers), then run the callbacks due. Returns how
 * many ran, or -errno when the wait failed.
 */
int loop__run_once(struct loop *l, int max_wait_ms);
/* Turn until loop__stop: 0, or -errno when a wait failed. */
int loop__run(struct loop *l);

#endif
