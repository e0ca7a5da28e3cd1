// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "agent.h"
#include "lib/atomicfile.h"
#include "lib/log.h"
#include "publish.h"
#include "snapshot.h"

static void file_of(const struct agent *a, pid_t pid, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%d.json", a->publish_dir, (int)pid);
}

/*
 * The directory must be ours alone: a real directory owned by root and
 * writable by nobody else, or nothing is published (one warning).
 */
static int safe_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022))
		return -EPERM;
	return 0;
}

/*
 * Replace path with text, mode 0600, owned by uid:gid. /run is tmpfs: no
 * fsync, these files do not outlive a boot.
 */
static int write_atomic(const char *path, const char *text, uid_t uid,
			gid_t gid)
{
	struct atomicfile_opts o = { .replace = true, .uid = uid, .gid = gid };

	return atomicfile__write(path, text, strlen(text), &o);
}

/* The pid written in dir/agent.pid (path filled in), 0 if none. */
static pid_t pid_file(const char *dir, char *path, size_t size)
{
	char buf[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, size, "%s/agent.pid", dir);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	return n > 0 ? atoi(buf) : 0;
}

/*
 * The agent named by dir/agent.pid, if it is another live memprof-bpf:
 * two agents publishing in one directory would overwrite each other's
 * files and steal each other's socket. 0: none.
 */
static pid_t other_agent(const char *dir)
{
	char path[300], comm[32] = "";
	pid_t pid = pid_file(dir, path, sizeof(path));
	FILE *f;

	if (pid <= 0 || pid == getpid())
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return strncmp(comm, "memprof-bpf", 11) == 0 ? pid : 0;
}

int publish__start(struct agent *a, const char *dir)
{
	char path[300], pid[32];
	pid_t other;
	int err;

	snprintf(a->publish_dir, sizeof(a->publish_dir), "%s", dir);
	err = safe_dir(dir);
	if (!err && (other = other_agent(dir))) {
		log_warn("another agent (pid %d) publishes in %s: "
			 "%%memprof and big_objs() keep asking it; "
			 "this one reports here only (set "
			 "MEMPROF_BPF_STATE_DIR to publish elsewhere)",
			 (int)other, dir);
		return -EEXIST;
	}
	if (!err) {
		snprintf(path, sizeof(path), "%s/agent.pid", dir);
		snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		err = write_atomic(path, pid, 0, 0);
	}
	if (err) {
		log_warn("%s: %s; %%memprof in notebooks will not see this "
			 "agent",
			 dir, strerror(-err));
		return err;
	}
	/* Readable by everyone: it only says that an agent runs. */
	chmod(path, 0644);
	a->publishing = true;
	return 0;
}

/* The kernel's user owns its file: only it (and root) may read it. */
static void owner_of(pid_t pid, uid_t *uid, gid_t *gid)
{
	char proc[32];
	struct stat st;

	snprintf(proc, sizeof(proc), "/proc/%d", (int)pid);
	*uid = 0, *gid = 0;
	if (!stat(proc, &st))
		*uid = st.st_uid, *gid = st.st_gid;
}

/*
 * One kernel's per-cell document: what <pid>.json holds, and what the
 * query socket's "cells" op answers with the ring drained to the request.
 */
json_t *publish__state(const struct agent *a, struct tracee *t)
{
	struct snap_meta m = {
		.mono_to_real_ns = snapshot__mono_to_real(),
		.taken_ns = a->now_ns,
		.sites = &t->sites,
		.cells = &t->cells,
	};
	char now[40], peak_at[40];
	json_t *doc = json_object();

	if (!doc)
		return NULL;
	heap__settle_peak(&t->heap);
	snapfile__iso_time(a->now_ns + m.mono_to_real_ns, now, sizeof(now));
	snapfile__iso_time(t->heap.peak_at_ns + m.mono_to_real_ns, peak_at,
			   sizeof(peak_at));
	json_object_set_new(doc, "pid", json_integer(t->pid));
	json_object_set_new(doc, "agent_pid", json_integer(getpid()));
	json_object_set_new(doc, "updated_at", json_string(now));
	json_object_set_new(doc, "live_bytes",
			    json_integer(t->heap.live_bytes));
	json_object_set_new(doc, "peak_bytes",
			    json_integer(t->heap.peak_bytes));
	json_object_set_new(doc, "peak_at",
			    t->heap.peak_at_ns ? json_string(peak_at)
					       : json_null());
	json_object_set_new(doc, "peak_cell", snapshot__peak_cell(&m));
	json_object_set_new(doc, "cells", snapshot__cells(&m, &t->heap, false));
	return doc;
}

void publish__tick(struct agent *a)
{
	char path[300];
	size_t i;

	if (!a->publishing)
		return;
	for (i = 0; i < a->procs.len; i++) {
		struct tracee *t = a->procs.v[i];
		json_t *doc;
		char *text;
		int err;
		uid_t uid;
		gid_t gid;

		if (!t->python || t->exited)
			continue;
		doc = publish__state(a, t);
		text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
		json_decref(doc);
		if (!text)
			continue;
		owner_of(t->pid, &uid, &gid);
		file_of(a, t->pid, path, sizeof(path));
		err = write_atomic(path, text, uid, gid);
		if (err)
			log_debug("%s: %s", path, strerror(-err));
		free(text);
	}
}

void publish__forget(struct agent *a, pid_t pid)
{
	char path[300];

	if (!a->publishing)
		return;
	file_of(a, pid, path, sizeof(path));
	unlink(path);
}

void publish__stop(struct agent *a)
{
	char path[300];

	if (!a->publishing)
		return;
	for (size_t i = 0; i < a->procs.len; i++)
		publish__forget(a, a->procs.v[i]->pid);
	if (pid_file(a->publish_dir, path, sizeof(path)) == getpid())
		unlink(path);
	a->publishing = false;
}
