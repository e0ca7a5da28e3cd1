// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include "clock.h"
#include "loop.h"

#define LOOP_BATCH 64 /* epoll events taken per turn */
#define LOOP_MIN_FDS 64

/* A watched fd; the table is indexed by fd, as ae.c's is. */
struct fd_slot {
	loop_fd_fn *fn; /* NULL: not watched */
	void *data;
	unsigned events;
	/*
	 * Bumped by each add and carried in the epoll event: an event for
	 * an fd deleted (and perhaps added again) by an earlier callback of
	 * the same turn is told apart and dropped.
	 */
	uint32_t gen;
};

struct timer {
	int64_t id; /* 0: deleted or fired once; swept after the pass */
	uint64_t due, period;
	uint64_t pass; /* the timer pass it last fired in, or was added in */
	loop_timer_fn *fn;
	void *data;
};

struct loop {
	int epfd;
	struct fd_slot *fds;
	int nfds;
	struct timer *timers;
	size_t ntimers, timers_cap;
	int64_t last_id;
	uint64_t pass;
	int sigfd; /* -1 until a signal is added */
	sigset_t sigs;
	struct {
		loop_signal_fn *fn;
		void *data;
	} on_signal[_NSIG];
	bool stopped;
};

/* ---- the loop ------------------------------------------------------------ */

struct loop *loop__new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	l->sigfd = -1;
	sigemptyset(&l->sigs);
	return l;
}

void loop__free(struct loop *l)
{
	if (!l)
		return;
	if (l->sigfd >= 0)
		close(l->sigfd);
	close(l->epfd);
	free(l->fds);
	free(l->timers);
	free(l);
}

void loop__stop(struct loop *l)
{
	l->stopped = true;
}

bool loop__stopped(const struct loop *l)
{
	return l->stopped;
}

/* ---- file descriptors ---------------------------------------------------- */

static uint32_t to_epoll(unsigned events)
{
	return (events & LOOP_IN ? EPOLLIN : 0) |
	       (events & LOOP_OUT ? EPOLLOUT : 0);
}

/* What fired, as the slot watches it (HUP and ERR wake both sides). */
static unsigned from_epoll(uint32_t ev, unsigned watched)
{
	unsigned fired = (ev & EPOLLIN ? LOOP_IN : 0) |
			 (ev & EPOLLOUT ? LOOP_OUT : 0);

	if (ev & (EPOLLHUP | EPOLLERR))
		fired |= LOOP_HUP | LOOP_IN | LOOP_OUT;
	return fired & (watched | LOOP_HUP);
}

/* Room for fd in the table (new slots unwatched). */
static int grow_fds(struct loop *l, int fd)
{
	int n = l->nfds ? l->nfds : LOOP_MIN_FDS;
	struct fd_slot *p;

	while (n <= fd)
		n *= 2;
	p = realloc(l->fds, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memset(p + l->nfds, 0, (n - l->nfds) * sizeof(*p));
	l->fds = p;
	l->nfds = n;
	return 0;
}

static int ctl(struct loop *l, int op, int fd, const struct fd_slot *s,
	       unsigned events)
{
	struct epoll_event ev = {
		.events = to_epoll(events),
		.data.u64 = (uint64_t)s->gen << 32 | (uint32_t)fd,
	};

	return epoll_ctl(l->epfd, op, fd, &ev) ? -errno : 0;
}

int loop__add_fd(struct loop *l, int fd, unsigned events, loop_fd_fn *fn,
		 void *data)
{
	struct fd_slot next;
	int err;

	if (fd < 0 || !fn)
		return -EINVAL;
	if (fd >= l->nfds && grow_fds(l, fd))
		return -ENOMEM;
	if (l->fds[fd].fn)
		return -EEXIST;
	next = (struct fd_slot){ fn, data, events, l->fds[fd].gen + 1 };
	err = ctl(l, EPOLL_CTL_ADD, fd, &next, events);
	if (!err)
		l->fds[fd] = next;
	return err;
}

int loop__set_fd(struct loop *l, int fd, unsigned events)
{
	int err;

	if (fd < 0 || fd >= l->nfds || !l->fds[fd].fn)
		return -ENOENT;
	if (l->fds[fd].events == events)
		return 0;
	err = ctl(l, EPOLL_CTL_MOD, fd, &l->fds[fd], events);
	if (!err)
		l->fds[fd].events = events;
	return err;
}

void loop__del_fd(struct loop *l, int fd)
{
	if (fd < 0 || fd >= l->nfds || !l->fds[fd].fn)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->fds[fd].fn = NULL;
	l->fds[fd].data = NULL;
	l->fds[fd].events = 0;
}

/*
 * Run the callbacks of a turn's events. The slot is looked up afresh for
 * each: an earlier callback may have deleted, re-added or re-armed it.
 */
static int dispatch_fds(struct loop *l, const struct epoll_event *ev, int n)
{
	int i, ran = 0;

	for (i = 0; i < n && !l->stopped; i++) {
		int fd = (int)(uint32_t)ev[i].data.u64;
		uint32_t gen = ev[i].data.u64 >> 32;
		struct fd_slot s;
		unsigned fired;

		if (fd >= l->nfds || !l->fds[fd].fn || l->fds[fd].gen != gen)
			continue;
		s = l->fds[fd];
		fired = from_epoll(ev[i].events, s.events);
		if (!fired)
			continue;
		s.fn(l, fd, fired, s.data);
		ran++;
	}
	return ran;
}

/* ---- timers -------------------------------------------------------------- */

int64_t loop__add_timer(struct loop *l, uint64_t after_ns, uint64_t period_ns,
			loop_timer_fn *fn, void *data)
{
	struct timer *t;

	if (l->ntimers == l->timers_cap) {
		size_t cap = l->timers_cap ? l->timers_cap * 2 : 16;

		t = realloc(l->timers, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		l->timers = t;
		l->timers_cap = cap;
	}
	/* Added by a timer's callback: not due before the next pass. */
	l->timers[l->ntimers++] = (struct timer){
		.id = ++l->last_id,
		.due = now_monotonic_ns() + after_ns,
		.period = period_ns,
		.pass = l->pass,
		.fn = fn,
		.data = data,
	};
	return l->last_id;
}

void loop__del_timer(struct loop *l, int64_t id)
{
	size_t i;

	for (i = 0; id > 0 && i < l->ntimers; i++)
		if (l->timers[i].id == id)
			l->timers[i].id = 0;
}

/* The earliest deadline of a live timer, UINT64_MAX without one. */
static uint64_t next_due(const struct loop *l)
{
	uint64_t due = UINT64_MAX;
	size_t i;

	for (i = 0; i < l->ntimers; i++)
		if (l->timers[i].id && l->timers[i].due < due)
			due = l->timers[i].due;
	return due;
}

/* The earliest timer due by now that has not fired in this pass. */
static struct timer *first_due(struct loop *l, uint64_t now)
{
	struct timer *first = NULL;
	size_t i;

	for (i = 0; i < l->ntimers; i++) {
		struct timer *t = &l->timers[i];

		if (t->id && t->pass != l->pass && t->due <= now &&
		    (!first || t->due < first->due))
			first = t;
	}
	return first;
}

/* Drop the timers deleted or fired once, keeping the others' order. */
static void sweep_timers(struct loop *l)
{
	size_t i, n = 0;

	for (i = 0; i < l->ntimers; i++)
		if (l->timers[i].id)
			l->timers[n++] = l->timers[i];
	l->ntimers = n;
}

/*
 * Fire the timers due, earliest first, each at most once a pass. The
 * entry is updated before its callback runs, which may add timers (the
 * table can move) or delete any, its own included.
 */
static int run_timers(struct loop *l)
{
	uint64_t now = now_monotonic_ns();
	struct timer *t;
	int ran = 0;

	l->pass++;
	while (!l->stopped && (t = first_due(l, now))) {
		loop_timer_fn *fn = t->fn;
		void *data = t->data;

		t->pass = l->pass;
		if (!t->period)
			t->id = 0;
		else if (t->due + t->period > now)
			t->due += t->period;
		else /* late: no burst to catch up */
			t->due = now + t->period;
		fn(l, data);
		ran++;
	}
	sweep_timers(l);
	return ran;
}

/* ---- signals ------------------------------------------------------------- */

/* Process-wide, as the signal mask is: what the loops took, and before. */
static sigset_t taken_signals, mask_before;
static bool mask_saved;

/* Every signal queued on the signalfd, to its callback. */
static void on_signalfd(struct loop *l, int fd, unsigned events, void *data)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)data;
	while (!l->stopped && read(fd, &si, sizeof(si)) == sizeof(si)) {
		int sig = si.ssi_signo;

		if (sig > 0 && sig < _NSIG && l->on_signal[sig].fn)
			l->on_signal[sig].fn(l, sig, l->on_signal[sig].data);
	}
}

/* Block signo here (remembering the mask the first time); 0 or -errno. */
static int take_signal(int signo)
{
	sigset_t one;
	int err;

	sigemptyset(&one);
	sigaddset(&one, signo);
	if (!mask_saved)
		sigemptyset(&taken_signals);
	err = pthread_sigmask(SIG_BLOCK, &one,
			      mask_saved ? NULL : &mask_before);
	if (err)
		return -err;
	mask_saved = true;
	sigaddset(&taken_signals, signo);
	return 0;
}

int loop__add_signal(struct loop *l, int signo, loop_signal_fn *fn, void *data)
{
	int fd, err;

	if (signo <= 0 || signo >= _NSIG || !fn)
		return -EINVAL;
	err = take_signal(signo);
	if (err)
		return err;
	sigaddset(&l->sigs, signo);
	fd = signalfd(l->sigfd, &l->sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (l->sigfd < 0) {
		err = loop__add_fd(l, fd, LOOP_IN, on_signalfd, NULL);
		if (err) {
			close(fd);
			return err;
		}
		l->sigfd = fd;
	}
	l->on_signal[signo].fn = fn;
	l->on_signal[signo].data = data;
	return 0;
}

void loop__child_signals(void)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	int sig;

	if (!mask_saved)
		return;
	for (sig = 1; sig < _NSIG; sig++)
		if (sigismember(&taken_signals, sig) == 1)
			sigaction(sig, &dfl, NULL);
	pthread_sigmask(SIG_SETMASK, &mask_before, NULL);
}

/* ---- turning ------------------------------------------------------------- */

/* How long a turn may wait: until the next timer, within max_wait_ms. */
static int wait_ms(const struct loop *l, int max_wait_ms)
{
	uint64_t due = next_due(l), now, ms;

	if (due == UINT64_MAX)
		return max_wait_ms;
	now = now_monotonic_ns();
	/* Rounded up: waking a little early would spin until it is due. */
	ms = due <= now ? 0 : (due - now + 999999) / 1000000;
	if (max_wait_ms >= 0 && ms > (uint64_t)max_wait_ms)
		ms = max_wait_ms;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

int loop__run_once(struct loop *l, int max_wait_ms)
{
	struct epoll_event ev[LOOP_BATCH];
	int n, ran;

	if (l->stopped)
		return 0;
	n = epoll_wait(l->epfd, ev, LOOP_BATCH, wait_ms(l, max_wait_ms));
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	ran = dispatch_fds(l, ev, n);
	return ran + run_timers(l);
}

int loop__run(struct loop *l)
{
	int n = 0;

	while (!l->stopped && n >= 0)
		n = loop__run_once(l, -1);
	return n < 0 ? n : 0;
}
