// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <ctype.h>
#include <elf.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "procs.h"

/* A word boundary inside an argument: path, module and option separators. */
static bool is_sep(char c)
{
	return c == '/' || c == '.' || c == '=' || c == ',' || c == ' ' ||
	       c == ':';
}

/*
 * Does word (of n bytes) name NAME? Equal, or NAME followed by '_' or '-'
 * (ipykernel_launcher, ipykernel-6), or NAME.py.
 */
static bool word_names(const char *w, size_t n, const char *name)
{
	size_t k = strlen(name);

	if (n < k || strncmp(w, name, k) != 0)
		return false;
	return n == k || w[k] == '_' || w[k] == '-';
}

/* Does any word of arg[0..n) name NAME? */
static bool arg_matches(const char *arg, size_t n, const char *name)
{
	const char *w = arg, *p, *end = arg + n;

	for (p = arg; p <= end; p++) {
		if (p == end || is_sep(*p)) {
			if (p > w && word_names(w, p - w, name))
				return true;
			w = p + 1;
		}
	}
	return false;
}

bool procs__match(const char *name, const char *comm, const char *cmdline,
		  size_t len)
{
	size_t off = 0;

	if (!name || !*name)
		return false;
	if (comm && strcmp(comm, name) == 0)
		return true;
	while (off < len) {
		const char *arg = cmdline + off;
		size_t alen = strnlen(arg, len - off);

		if (arg_matches(arg, alen, name))
			return true;
		off += alen + 1;
	}
	return false;
}

static ssize_t read_file(const char *path, char *buf, size_t size)
{
	ssize_t n, total = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while ((size_t)total < size &&
	       (n = read(fd, buf + total, size - total)) > 0)
		total += n;
	close(fd);
	return total;
}

int procs__read_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	n = read_file(path, buf, size - 1);
	if (n < 0)
		return n;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0'))
		n--;
	buf[n] = '\0';
	return 0;
}

ssize_t procs__read_cmdline(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	n = read_file(path, buf, size - 1);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

void procs__cmdline_text(char *cmdline, size_t len)
{
	size_t i;

	while (len > 0 && cmdline[len - 1] == '\0')
		len--;
	for (i = 0; i < len; i++)
		if (cmdline[i] == '\0' || !isprint((unsigned char)cmdline[i]))
			cmdline[i] = ' ';
	cmdline[len] = '\0';
}

uint64_t procs__rss_bytes(pid_t pid)
{
	char path[64], buf[256];
	unsigned long long size, resident;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/statm", pid);
	n = read_file(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return 0;
	return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

int procs__file_path(pid_t pid, const char *path, dev_t dev, uint64_t ino,
		     char *out, size_t size)
{
	struct stat st;

	if (!stat(path, &st) && st.st_dev == dev && st.st_ino == ino) {
		snprintf(out, size, "%s", path);
		return 0;
	}
	/*
	 * Not the same inode under /proc/PID/root either: overlayfs shows
	 * the layer's inode in maps, the merged one in stat. The process's
	 * own view of the path is still the file it mapped.
	 */
	snprintf(out, size, "/proc/%d/root%s", (int)pid, path);
	if (!stat(out, &st))
		return 0;
	snprintf(out, size, "%s", path);
	return -ENOENT;
}

int procs__read_mem(pid_t pid, uint64_t addr, void *buf, size_t size)
{
	char mem[64];
	ssize_t got;
	int fd;

	snprintf(mem, sizeof(mem), "/proc/%d/mem", (int)pid);
	fd = open(mem, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	got = pread(fd, buf, size, addr);
	close(fd);
	return got == (ssize_t)size ? 0 : -EIO;
}

int procs__beside_self(const char *rel, char *out, size_t size)
{
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int len;

	if (n <= 0)
		return -ENOENT;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	len = snprintf(out, size, "%s/%s", exe, rel);
	if (len < 0 || (size_t)len >= size)
		return -ENAMETOOLONG;
	return access(out, R_OK) ? -ENOENT : 0;
}

bool procs__alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

int procs__each(int (*fn)(pid_t pid, void *ctx), void *ctx)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int ret = 0;

	if (!d)
		return -errno;
	while (!ret && (e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end == '\0' && pid > 0)
			ret = fn((pid_t)pid, ctx);
	}
	closedir(d);
	return ret;
}

/*
 * A limit file's number: v2 writes "max" for none, v1 a huge page-rounded
 * number (9223372036854771712): both are -1, no limit.
 */
int64_t procs__parse_limit(const char *text)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (end == text || errno || v >= (1ULL << 62))
		return -1;
	return (int64_t)v;
}

/*
 * The "oom_kill N" line of v1's memory.oom_control or v2's memory.events
 * (not oom_kill_disable, not oom_group_kill); -1 when there is none.
 */
int64_t procs__parse_oom_kills(const char *text)
{
	const char *line = text;
	long long v;

	while (*line) {
		if (strncmp(line, "oom_kill ", 9) == 0 &&
		    sscanf(line + 9, "%lld", &v) == 1 && v >= 0)
			return v;
		line = strchrnul(line, '\n');
		line += *line == '\n';
	}
	return -1;
}

/* Is controller among the comma-separated names in [list, end)? */
static bool has_controller(const char *list, const char *end,
			   const char *controller)
{
	size_t k = strlen(controller);
	const char *p = list, *comma;

	while (p < end) {
		comma = memchr(p, ',', end - p);
		if (!comma)
			comma = end;
		if ((size_t)(comma - p) == k && strncmp(p, controller, k) == 0)
			return true;
		p = comma + 1;
	}
	return false;
}

/* Copy the path part of one /proc/PID/cgroup line ([path, end)). */
static void set_path(struct memcg *m, const char *path, const char *end,
		     bool v2)
{
	size_t n = end - path;

	if (n >= sizeof(m->path))
		n = sizeof(m->path) - 1;
	memcpy(m->path, path, n);
	m->path[n] = '\0';
	m->v2 = v2;
}

int procs__parse_cgroup(const char *text, struct memcg *m)
{
	const char *line, *end, *c1, *c2;
	bool v2 = false;

	m->path[0] = '\0';
	for (line = text; line && *line; line = end + (*end == '\n')) {
		end = strchrnul(line, '\n');
		c1 = memchr(line, ':', end - line);
		c2 = c1 ? memchr(c1 + 1, ':', end - c1 - 1) : NULL;
		if (!c2)
			continue;
		if (has_controller(c1 + 1, c2, "memory")) {
			set_path(m, c2 + 1, end, false);
			return 0; /* the v1 controller wins */
		}
		if (!v2 && c1 - line == 1 && *line == '0' && c2 == c1 + 1) {
			set_path(m, c2 + 1, end, true);
			v2 = true;
		}
	}
	return v2 ? 0 : -ENOENT;
}

/* PF_EXITING in the flags field (the 9th) of /proc/PID/stat text. */
bool procs__parse_exiting(const char *stat)
{
	const char *p = strrchr(stat, ')');
	unsigned int flags;

	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %u", &flags) != 1)
		return true; /* unreadable: treat as gone */
	return flags & 0x00000004; /* PF_EXITING */
}

bool procs__exiting(pid_t pid)
{
	char path[64], buf[1024];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = read_file(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	return procs__parse_exiting(buf);
}

int procs__memory_cgroup(pid_t pid, struct memcg *m)
{
	char fname[64], buf[4096];
	ssize_t n;

	snprintf(fname, sizeof(fname), "/proc/%d/cgroup", (int)pid);
	n = read_file(fname, buf, sizeof(buf) - 1);
	if (n <= 0)
		return n < 0 ? (int)n : -ENOENT;
	buf[n] = '\0';
	if (procs__parse_cgroup(buf, m))
		return -ENOENT;
	/*
	 * v1 shows a process that began to exit in "/", not where it was
	 * (an OOM victim, typically): no answer beats a wrong one. Exiting
	 * never ends, so a check after the read covers the read.
	 */
	if (!m->v2 && strcmp(m->path, "/") == 0 && procs__exiting(pid))
		return -ESRCH;
	return 0;
}

bool procs__memcg_v2(void)
{
	struct memcg m;

	return procs__memory_cgroup(getpid(), &m) == 0 && m.v2;
}

/* A file of m's directory: v1 under the memory mount, v2 under cgroup2. */
static ssize_t read_memcg_file(const struct memcg *m, const char *name,
			       char *buf, size_t size)
{
	static const char *const v2_roots[] = {
		"/sys/fs/cgroup",
		"/sys/fs/cgroup/unified",
	};
	char file[sizeof(m->path) + 64];
	ssize_t n = -ENOENT;
	size_t i;

	if (!m->path[0])
		return -ENOENT;
	for (i = 0; i < (m->v2 ? 2 : 1) && n < 0; i++) {
		snprintf(file, sizeof(file), "%s%s/%s",
			 m->v2 ? v2_roots[i] : "/sys/fs/cgroup/memory", m->path,
			 name);
		n = read_file(file, buf, size - 1);
	}
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

int64_t procs__memcg_limit(const struct memcg *m)
{
	char buf[64];

	if (read_memcg_file(m, m->v2 ? "memory.max" : "memory.limit_in_bytes",
			    buf, sizeof(buf)) <= 0)
		return -1;
	return procs__parse_limit(buf);
}

int64_t procs__memcg_oom_kills(const struct memcg *m)
{
	char buf[512];

	if (read_memcg_file(m, m->v2 ? "memory.events" : "memory.oom_control",
			    buf, sizeof(buf)) <= 0)
		return -1;
	return procs__parse_oom_kills(buf);
}

unsigned long procs__auxv(pid_t pid, unsigned long type)
{
	unsigned long value = 0;
	Elf64_auxv_t av;
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	while (read(fd, &av, sizeof(av)) == sizeof(av) && av.a_type != AT_NULL)
		if (av.a_type == type)
			value = av.a_un.a_val;
	close(fd);
	return value;
}

uint64_t procs__image(pid_t pid)
{
	unsigned long random = procs__auxv(pid, AT_RANDOM);
	uint64_t image;

	if (!random || procs__read_mem(pid, random, &image, sizeof(image)))
		return 0;
	return image;
}
