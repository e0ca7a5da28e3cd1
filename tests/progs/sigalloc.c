// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Allocations from a signal handler: a 1 ms timer's handler keeps a
 * 777-byte block each time (1000 at most), while the main loop mallocs and
 * frees 100 bytes with the timer's signal blocked around each call (glibc's
 * malloc is not async-signal-safe: the handler must not interrupt it). It
 * prints how many blocks the handler kept: they are live at exit,
 * allocated by on_signal.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

#define KEEP 1000

static void *kept[KEEP];
static volatile sig_atomic_t nkept;

__attribute__((noinline)) static void on_signal(int sig)
{
	(void)sig;
	if (nkept < KEEP)
		kept[nkept++] = malloc(777);
}

int main(void)
{
	struct itimerval t = { { 0, 1000 }, { 0, 1000 } };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t alrm;
	long i;

	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &t, NULL);
	for (i = 0; nkept < KEEP && i < 200000000; i++) {
		void *p;

		sigprocmask(SIG_BLOCK, &alrm, NULL);
		p = malloc(100);
		free(p);
		sigprocmask(SIG_UNBLOCK, &alrm, NULL);
	}
	t.it_value.tv_usec = t.it_interval.tv_usec = 0;
	setitimer(ITIMER_REAL, &t, NULL);
	printf("kept %d\n", (int)nkept);
	return 0;
}
