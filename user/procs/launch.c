// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include "launch.h"
#include "procs.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/text.h"

/* Run as the user who ran sudo, so files and permissions are theirs. */
static int drop_to_sudo_user(void)
{
	const char *u = getenv("SUDO_UID"), *g = getenv("SUDO_GID");
	uid_t uid;
	gid_t gid;

	if (!u || !g || getuid() != 0)
		return 0;
	uid = strtoul(u, NULL, 10);
	gid = strtoul(g, NULL, 10);
	if (uid == 0)
		return 0;
	if (setgroups(0, NULL) || setgid(gid) || setuid(uid))
		return -errno;
	return 0;
}

/*
 * Child side: the command starts with the signals as the agent found
 * them (the loop blocks its own for its signalfd), under ptrace; exec
 * failures go back through the CLOEXEC pipe.
 */
static void child(char **argv, int errfd)
{
	int err = 0;

	loop__child_signals();
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		err = errno;
	else if ((err = -drop_to_sudo_user()) == 0) {
		execvp(argv[0], argv);
		err = errno;
	}
	if (write(errfd, &err, sizeof(err)) < 0)
		_exit(126);
	_exit(127);
}

pid_t launch__start(char **argv)
{
	int fds[2], err = 0, status;
	pid_t pid;
	ssize_t n;

	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		child(argv, fds[1]);
	close(fds[1]);
	n = read(fds[0], &err, sizeof(err));
	close(fds[0]);
	if (n == sizeof(err) && err) {
		waitpid(pid, &status, 0);
		log_err("cannot run '%s': %s", argv[0], strerror(err));
		return -err;
	}
	/* exec succeeded: the child stops with SIGTRAP before its first insn */
	if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) {
		log_err("'%s' did not start", argv[0]);
		return -ECHILD;
	}
	return pid;
}

int launch__to_entry(pid_t pid)
{
	unsigned long entry = procs__auxv(pid, AT_ENTRY), orig, trap;
	struct user_regs_struct regs;
	int status;

	if (!entry)
		return -ENOENT;
	errno = 0;
	orig = ptrace(PTRACE_PEEKTEXT, pid, (void *)entry, NULL);
	if (errno)
		return -errno;
	trap = (orig & ~0xffUL) | 0xcc; /* int3 */
	if (ptrace(PTRACE_POKETEXT, pid, (void *)entry, (void *)trap) ||
	    ptrace(PTRACE_CONT, pid, NULL, NULL))
		return -errno;
	if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status) ||
	    WSTOPSIG(status) != SIGTRAP)
		return -ECHILD;
	/* Undo the int3 and step back onto the real first instruction. */
	if (ptrace(PTRACE_POKETEXT, pid, (void *)entry, (void *)orig) ||
	    ptrace(PTRACE_GETREGS, pid, NULL, &regs))
		return -errno;
	regs.rip = entry;
	if (ptrace(PTRACE_SETREGS, pid, NULL, &regs))
		return -errno;
	return 0;
}

int launch__release(pid_t pid)
{
	return ptrace(PTRACE_DETACH, pid, NULL, NULL) ? -errno : 0;
}

/* ---- launchers ---------------------------------------------------------- */

/*
 * Programs that set something up (root, environment, priority, CPUs,
 * credentials, namespaces, buffering) and then exec their arguments in
 * the same process: the agent follows their execs and attaches at the
 * program's own entry point. Decided by the basename of /proc/PID/exe.
 * Not here: sudo (setuid, cannot be traced usefully) and programs that
 * fork the command and wait (timeout, flock, time, su, runuser). Some of
 * these fork too, on request (unshare --fork, nsenter into a PID
 * namespace, setsid as a group leader): launch__follow stops at that
 * fork and the launcher is traced as it stands, its children followed
 * by the probes; --comm or --pid name the program directly instead.
 * Shells too (`sh -c 'echo $$ > cgroup.procs && exec python3 x.py'`):
 * a shell that execs is followed like the others, so the program is
 * traced from its entry point rather than caught up with after its exec
 * (a race an OOM test lost under load); one that forks first stops the
 * following there.
 */
static const char *const launchers[] = {
	"chroot",  "chrt",    "cgexec",	 "env",	    "ionice",
	"nice",	   "nohup",   "nsenter", "numactl", "prlimit",
	"setarch", "setpriv", "setsid",	 "stdbuf",  "taskset",
	"unshare", "sh",      "dash",	 "bash",
};

#define MAX_LAUNCHERS 8 /* execs followed before the image is taken as is */

bool launch__is_launcher(const char *exe)
{
	const char *base = text__base_name(exe);
	size_t i;

	for (i = 0; i < sizeof(launchers) / sizeof(launchers[0]); i++)
		if (strcmp(base, launchers[i]) == 0)
			return true;
	return false;
}

/* Is the image pid runs now a launcher? An unreadable exe is not. */
static bool runs_launcher(pid_t pid)
{
	char link[64], exe[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	return launch__is_launcher(exe);
}

/* A ptrace event stop (PTRACE_EVENT_*) in a wait status, or 0. */
static int ptrace_event(int status)
{
	if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP)
		return 0;
	return status >> 16;
}

/*
 * The launcher forked (PTRACE_O_TRACEFORK attached the child): let the
 * child go untraced by ptrace; the probes follow it from its parent.
 */
static int let_child_go(pid_t parent)
{
	unsigned long child;
	int status;

	if (ptrace(PTRACE_GETEVENTMSG, parent, NULL, &child))
		return -errno;
	if (waitpid(child, &status, __WALL) != (pid_t)child)
		return -errno;
	if (WIFSTOPPED(status) && ptrace(PTRACE_DETACH, child, NULL, NULL))
		return -errno;
	return 0;
}

/*
 * A stop that is not ours: pass its signal on. A group stop (no
 * siginfo) is resumed, the signal delivered already (without
 * PTRACE_SEIZE it cannot be kept); an event stop has no signal.
 */
static int pass_signal(pid_t pid, int status)
{
	siginfo_t si;
	long sig = WSTOPSIG(status);

	if (ptrace_event(status) ||
	    (ptrace(PTRACE_GETSIGINFO, pid, NULL, &si) && errno == EINVAL))
		sig = 0;
	return ptrace(PTRACE_CONT, pid, NULL, (void *)sig) ? -errno : 0;
}

/*
 * Run a stopped launcher to its next exec, fork or exit; signals that
 * come meanwhile go on to it.
 */
static int next_stop(pid_t pid, int *status)
{
	int ev, err;

	if (ptrace(PTRACE_CONT, pid, NULL, NULL))
		return -errno;
	for (;;) {
		if (waitpid(pid, status, 0) != pid)
			return -errno;
		if (WIFEXITED(*status) || WIFSIGNALED(*status))
			return LAUNCH_EXITED;
		ev = ptrace_event(*status);
		if (ev == PTRACE_EVENT_EXEC)
			return LAUNCH_EXECED;
		if (ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK) {
			err = let_child_go(pid);
			return err ? err : LAUNCH_FORKED;
		}
		err = pass_signal(pid, *status);
		if (err)
			return err;
	}
}

/*
 * From the first exec stop, through at most MAX_LAUNCHERS launchers'
 * execs. EXITKILL: should the agent die while the child is stopped, the
 * command dies too rather than run untraced (as on start_command's
 * errors); it lapses at the detach.
 */
int launch__follow(pid_t pid, int *status)
{
	long opts = PTRACE_O_EXITKILL | PTRACE_O_TRACEEXEC |
		    PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK;
	int end = LAUNCH_PROGRAM, n;

	if (ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)opts))
		return -errno;
	for (n = 0; n < MAX_LAUNCHERS && runs_launcher(pid); n++) {
		end = next_stop(pid, status);
		if (end != LAUNCH_EXECED)
			return end;
	}
	if (n == MAX_LAUNCHERS && runs_launcher(pid))
		log_warn("pid %d: %d launchers in a row; tracing the last", pid,
			 n);
	return end;
}
