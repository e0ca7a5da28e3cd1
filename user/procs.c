// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
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

/* A cgroup file holding one number ("max" in v2 means none: -1). */
static int64_t read_limit(const char *path)
{
	char buf[64];
	ssize_t n = read_file(path, buf, sizeof(buf) - 1);
	unsigned long long v;

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (sscanf(buf, "%llu", &v) != 1)
		return -1;
	return v >= (1ULL << 62) ? -1 : (int64_t)v; /* v1's "unlimited" */
}

int procs__memory_cgroup(pid_t pid, char *path, size_t size, int64_t *limit)
{
	char fname[64], buf[4096], file[4400], *line, *save = NULL;
	const char *v1 = NULL, *v2 = NULL;
	ssize_t n;

	snprintf(fname, sizeof(fname), "/proc/%d/cgroup", (int)pid);
	n = read_file(fname, buf, sizeof(buf) - 1);
	if (n <= 0)
		return n < 0 ? (int)n : -ENOENT;
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, ":memory:"))
			v1 = strstr(line, ":memory:") + 8;
		else if (strncmp(line, "0::", 3) == 0)
			v2 = line + 3;
	}
	if (!v1 && !v2)
		return -ENOENT;
	snprintf(path, size, "%s", v1 ? v1 : v2);
	if (v1)
		snprintf(file, sizeof(file),
			 "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", v1);
	else
		snprintf(file, sizeof(file), "/sys/fs/cgroup%s/memory.max", v2);
	*limit = read_limit(file);
	if (*limit < 0 && !v1) {
		snprintf(file, sizeof(file),
			 "/sys/fs/cgroup/unified%s/memory.max", v2);
		*limit = read_limit(file);
	}
	return 0;
}
