// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include "launch.h"
#include "lib/log.h"
#include "lib/loop.h"

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

/* AT_ENTRY from /proc/PID/auxv: the program's entry point (_start). */
static unsigned long entry_point(pid_t pid)
{
	char path[64];
	Elf64_auxv_t av;
	unsigned long entry = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	while (read(fd, &av, sizeof(av)) == sizeof(av) && av.a_type != AT_NULL)
		if (av.a_type == AT_ENTRY)
			entry = av.a_un.a_val;
	close(fd);
	return entry;
}

int launch__to_entry(pid_t pid)
{
	unsigned long entry = entry_point(pid), orig, trap;
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
