// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "procs/procs.h"
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

/* ---- memory cgroups (OOM reports) ------------------------------------ */

Test(procs, limit_none_is_minus_one, .timeout = 10)
{
	cr_assert_eq(procs__parse_limit("134217728\n"), 134217728);
	cr_assert_eq(procs__parse_limit("0\n"), 0);
	/* v2 "max", v1's unlimited (PAGE_COUNTER_MAX pages), junk. */
	cr_assert_eq(procs__parse_limit("max\n"), -1);
	cr_assert_eq(procs__parse_limit("9223372036854771712\n"), -1);
	cr_assert_eq(procs__parse_limit("18446744073709551615\n"), -1);
	cr_assert_eq(procs__parse_limit(""), -1);
	cr_assert_eq(procs__parse_limit("-5\n"), -1);
}

Test(procs, oom_kills_from_v1_and_v2_files, .timeout = 10)
{
	/* v1 memory.oom_control: not fooled by oom_kill_disable. */
	cr_assert_eq(procs__parse_oom_kills("oom_kill_disable 1\n"
					    "under_oom 0\n"
					    "oom_kill 3\n"),
		     3);
	/* v2 memory.events: not fooled by oom or oom_group_kill. */
	cr_assert_eq(procs__parse_oom_kills("low 0\nhigh 0\nmax 12\noom 2\n"
					    "oom_kill 1\noom_group_kill 0\n"),
		     1);
	cr_assert_eq(procs__parse_oom_kills("oom_kill 0"), 0);
	cr_assert_eq(procs__parse_oom_kills("oom_kill_disable 0\n"
					    "under_oom 0\n"),
		     -1);
	cr_assert_eq(procs__parse_oom_kills("oom_group_kill 4\noom 4\n"), -1);
	cr_assert_eq(procs__parse_oom_kills(""), -1);
}

Test(procs, cgroup_v1_memory_line_wins, .timeout = 10)
{
	struct memcg m;

	/* The hybrid layout of the project's machines. */
	cr_assert_eq(procs__parse_cgroup("9:name=systemd:/\n8:pids:/\n"
					 "4:memory:/process_api/abc\n"
					 "1:cpu:/\n0::/\n",
					 &m),
		     0);
	cr_assert_str_eq(m.path, "/process_api/abc");
	cr_assert_not(m.v2);
	/* Co-mounted controllers; the path may hold ':'. */
	cr_assert_eq(procs__parse_cgroup("0::/x\n5:cpu,memory:/a:b\n", &m), 0);
	cr_assert_str_eq(m.path, "/a:b");
	cr_assert_not(m.v2);
}

Test(procs, cgroup_v2_line_when_no_v1_memory, .timeout = 10)
{
	struct memcg m;

	cr_assert_eq(procs__parse_cgroup("0::/user.slice/s.scope\n", &m), 0);
	cr_assert_str_eq(m.path, "/user.slice/s.scope");
	cr_assert(m.v2);
	/* "memoryx" is not the memory controller; no trailing newline. */
	cr_assert_eq(procs__parse_cgroup("3:memoryx:/no\n0::/yes", &m), 0);
	cr_assert_str_eq(m.path, "/yes");
	cr_assert(m.v2);
	cr_assert_eq(procs__parse_cgroup("3:cpu:/\n", &m), -ENOENT);
	cr_assert_eq(procs__parse_cgroup("", &m), -ENOENT);
}

Test(procs, exiting_flag_from_stat, .timeout = 10)
{
	/* A comm with ") " in it; flags 0x400140 vs 0x404044 (PF_EXITING). */
	cr_assert_not(procs__parse_exiting("42 (a) b) S 1 42 42 0 -1 4194624 "
					   "95 0 0 0\n"));
	cr_assert(procs__parse_exiting("42 (a) b) Z 1 42 42 0 -1 4210756 "
				       "95 0 0 0\n"));
	cr_assert(procs__parse_exiting("garbage"));
}

Test(procs, own_memory_cgroup_and_its_files, .timeout = 10)
{
	struct memcg m;

	cr_assert_eq(procs__memory_cgroup(getpid(), &m), 0);
	cr_assert_eq(m.path[0], '/');
	cr_assert_eq(procs__memcg_v2(), m.v2);
	/* Readable where the controller is (root's v2 has no such files). */
	if (strcmp(m.path, "/") != 0)
		cr_assert_geq(procs__memcg_oom_kills(&m), 0);
	m.path[0] = '\0';
	cr_assert_eq(procs__memcg_limit(&m), -1);
	cr_assert_eq(procs__memcg_oom_kills(&m), -1);
}

Test(procs, exiting_process_is_not_placed_in_the_root, .timeout = 10)
{
	struct memcg self, m;
	pid_t pid = start_sleep();
	int err;

	cr_assert_eq(procs__memory_cgroup(getpid(), &self), 0);
	kill(pid, SIGKILL);
	/* A zombie: v1 shows it in "/", which is not where it was. */
	cr_assert_eq(waitid(P_PID, pid, NULL, WEXITED | WNOWAIT), 0);
	err = procs__memory_cgroup(pid, &m);
	if (self.v2 || strcmp(self.path, "/") == 0)
		cr_assert_eq(err, 0);
	else
		cr_assert_eq(err, -ESRCH);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
}

/* ---- files of a process in another mount namespace ---------------------- */

#define NS_DIR "/tmp/memprof-unit-mntns"

struct ns_file {
	dev_t dev;
	ino_t ino;
	int err;
};

/*
 * A container in miniature: its own mount namespace, where NS_DIR (an
 * empty folder here) is a tmpfs holding a file "lib" of its own.
 */
static void ns_child(int up, int down)
{
	struct ns_file r = { 0 };
	struct stat st;
	char c;
	int fd;

	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", NS_DIR, "tmpfs", 0, "size=64k") ||
	    (fd = open(NS_DIR "/lib", O_CREAT | O_WRONLY, 0644)) < 0 ||
	    fstat(fd, &st))
		r.err = errno ? errno : EINVAL;
	else
		r.dev = st.st_dev, r.ino = st.st_ino;
	if (write(up, &r, sizeof(r)) != sizeof(r))
		_exit(1);
	if (read(down, &c, 1) < 0)
		_exit(1);
}

Test(procs, file_of_another_mount_namespace_is_opened_through_its_root,
     .timeout = 10)
{
	struct ns_file r;
	struct stat st;
	char out[256], want[256];
	pid_t pid;
	int go;

	mkdir(NS_DIR, 0755);
	pid = unit_child_start(ns_child, &r, sizeof(r), &go);
	cr_assert_gt(pid, 0);
	cr_assert_eq(r.err, 0, "child: %s", strerror(r.err));
	/* Not here (NS_DIR is empty in our namespace): through its root. */
	cr_assert_eq(procs__file_path(pid, NS_DIR "/lib", r.dev, r.ino, out,
				      sizeof(out)),
		     0);
	snprintf(want, sizeof(want), "/proc/%d/root" NS_DIR "/lib", pid);
	cr_assert_str_eq(out, want);
	cr_assert_eq(stat(out, &st), 0);
	cr_assert(st.st_dev == r.dev && st.st_ino == r.ino);
	unit_child_end(pid, go);
	rmdir(NS_DIR);
}

/* Our own files, and a chroot's seen from outside, keep their path. */
Test(procs, file_seen_from_our_root_keeps_its_path, .timeout = 10)
{
	char out[256];
	struct stat st;

	cr_assert_eq(stat("/proc/self/exe", &st), 0);
	cr_assert_eq(procs__file_path(getpid(), "/proc/self/exe", st.st_dev,
				      st.st_ino, out, sizeof(out)),
		     0);
	cr_assert_str_eq(out, "/proc/self/exe");
	cr_assert_eq(procs__file_path(getpid(), "/nonexistent/lib.so", 1, 2,
				      out, sizeof(out)),
		     -ENOENT);
	cr_assert_str_eq(out, "/nonexistent/lib.so");
}

/* Files that come with the binary, found beside /proc/self/exe. */
Test(procs, beside_self)
{
	char exe[4096], path[4096], small[8];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	cr_assert_eq(procs__beside_self(strrchr(exe, '/') + 1, path,
					sizeof(path)),
		     0);
	cr_assert_str_eq(path, exe);
	cr_assert_eq(procs__beside_self("no-such-file", path, sizeof(path)),
		     -ENOENT);
	cr_assert_eq(procs__beside_self("x", small, sizeof(small)),
		     -ENAMETOOLONG);
}
