// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "procs.h"
#include "unit.h"

/* A literal's bytes up to and including its last explicit NUL. */
#define CMD(s) (s), (sizeof(s) - 1)

static const char kernel_cmd[] = "/usr/bin/python3\0-m\0ipykernel_launcher\0"
				 "-f\0/tmp/kernel-1.json\0";

Test(procs, comm_equal_matches, .timeout = 10)
{
	cr_assert(procs__match("python3", "python3", CMD("")));
	cr_assert(procs__match("bash", "bash", NULL, 0));
	cr_assert_not(procs__match("python", "python3", CMD("")));
	cr_assert_not(procs__match("python3", "python", CMD("")));
}

Test(procs, cmdline_module_word_matches, .timeout = 10)
{
	cr_assert(procs__match("ipykernel", "python3", CMD(kernel_cmd)));
	cr_assert(procs__match("ipykernel", "python3",
			       CMD("python\0-m\0ipykernel.kernelapp\0")));
	cr_assert(procs__match("ipykernel", NULL,
			       CMD("/opt/x/ipykernel\0--flag\0")));
	cr_assert(
		procs__match("ipykernel", NULL, CMD("/usr/bin/ipykernel-6\0")));
	cr_assert(procs__match("python3", "python3.11",
			       CMD("/usr/bin/python3\0script.py\0")));
	/* Another argument of the command line. */
	cr_assert(procs__match("launcher", NULL,
			       CMD("/usr/bin/python3\0/srv/launcher.py\0")));
	cr_assert(procs__match("kernel", NULL, CMD(kernel_cmd)), "kernel-1 in "
								 "/tmp/"
								 "kernel-1."
								 "json");
}

Test(procs, cmdline_partial_words_do_not_match, .timeout = 10)
{
	cr_assert_not(procs__match("ipykernel", "python3",
				   CMD("/usr/bin/myipykernel\0")));
	cr_assert_not(procs__match("ipykernel", "python3",
				   CMD("python\0-m\0myipykernel\0")));
	cr_assert_not(procs__match("ipykernel", "python3",
				   CMD("/usr/bin/ipykernelx\0")));
	cr_assert_not(procs__match("ipykernel", "python3",
				   CMD("python\0ipykernelx.py\0")));
	cr_assert_not(procs__match("python3", "bash",
				   CMD("/usr/bin/python\0-c\0pass\0")));
	cr_assert_not(procs__match("jupyter", "python3", CMD(kernel_cmd)));
}

Test(procs, empty_name_never_matches, .timeout = 10)
{
	cr_assert_not(procs__match("", "", CMD("")));
	cr_assert_not(procs__match("", "python3", CMD(kernel_cmd)));
	cr_assert_not(procs__match(NULL, "python3", CMD(kernel_cmd)));
}

Test(procs, match_stays_within_len, .timeout = 10)
{
	/* Only the first argument is inside len. */
	static const char cmd[] = "/bin/sleep\0ipykernel\0";

	cr_assert_not(procs__match("ipykernel", NULL, cmd, 11));
	cr_assert(procs__match("ipykernel", NULL, cmd, sizeof(cmd) - 1));
	cr_assert(procs__match("sleep", NULL, cmd, 11));
}

Test(procs, cmdline_text_turns_nuls_into_spaces, .timeout = 10)
{
	char buf[sizeof(kernel_cmd) + 1];
	char odd[] = "a\tb\0c\0\0\0";

	memcpy(buf, kernel_cmd, sizeof(kernel_cmd));
	procs__cmdline_text(buf, sizeof(kernel_cmd) - 1);
	cr_assert_str_eq(buf, "/usr/bin/python3 -m ipykernel_launcher -f "
			      "/tmp/kernel-1.json");
	/* Trailing NULs dropped, unprintable bytes become spaces. */
	procs__cmdline_text(odd, sizeof(odd) - 1);
	cr_assert_str_eq(odd, "a b c");
}

Test(procs, self_is_alive_with_rss, .timeout = 10)
{
	char comm[16];

	cr_assert(procs__alive(getpid()));
	cr_assert_gt(procs__rss_bytes(getpid()), 0);
	cr_assert_eq(procs__rss_bytes(getpid()) % sysconf(_SC_PAGESIZE), 0);
	cr_assert_eq(procs__read_comm(getpid(), comm, sizeof(comm)), 0);
	cr_assert_str_eq(comm, "test_procs");
}

/* Start /bin/sleep 30 and return once it has exec'd. */
static pid_t start_sleep(void)
{
	int fds[2];
	char c;
	pid_t pid;

	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with a failed test */
		execl("/bin/sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	/* EOF once exec closed the write end. */
	cr_assert_eq(read(fds[0], &c, 1), 0);
	close(fds[0]);
	return pid;
}

Test(procs, child_identity_then_gone, .timeout = 10)
{
	char comm[16], cmd[256];
	pid_t pid = start_sleep();
	ssize_t n;

	cr_assert(procs__alive(pid));
	cr_assert_eq(procs__read_comm(pid, comm, sizeof(comm)), 0);
	cr_assert_str_eq(comm, "sleep");
	n = procs__read_cmdline(pid, cmd, sizeof(cmd));
	cr_assert_eq(n, 9);
	cr_assert_eq(memcmp(cmd,
			    "sleep\0"
			    "30\0",
			    9),
		     0);
	cr_assert(procs__match("sleep", comm, cmd, n));
	cr_assert_gt(procs__rss_bytes(pid), 0);

	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	/* Reaped: the pid names nothing (until it is reused). */
	cr_assert_not(procs__alive(pid));
	cr_assert_eq(procs__rss_bytes(pid), 0);
	cr_assert_eq(procs__read_comm(pid, comm, sizeof(comm)), -ENOENT);
	cr_assert_eq(procs__read_cmdline(pid, cmd, sizeof(cmd)), -ENOENT);
}

static int find_self(pid_t pid, void *ctx)
{
	int *seen = ctx;

	seen[0]++;
	if (pid == getpid())
		seen[1] = 1;
	return 0;
}

static int stop_at_first(pid_t pid, void *ctx)
{
	*(pid_t *)ctx = pid;
	return 7;
}

Test(procs, each_lists_pids, .timeout = 10)
{
	int seen[2] = { 0, 0 };
	pid_t first = 0;

	cr_assert_eq(procs__each(find_self, seen), 0);
	cr_assert(seen[1], "our own pid is listed");
	cr_assert_gt(seen[0], 1);
	cr_assert_eq(procs__each(stop_at_first, &first), 7);
	cr_assert_gt(first, 0);
}

Test(procs, last_argument_without_trailing_nul, .timeout = 10)
{
	static const char cmd[] = "python3\0-m\0ipykernel_launcher";

	/* sizeof - 1: the final NUL is not part of the buffer. */
	cr_assert(procs__match("ipykernel", "python3", cmd, sizeof(cmd) - 1));
	cr_assert_not(
		procs__match("launcher", "python3", cmd, sizeof(cmd) - 1));
}
