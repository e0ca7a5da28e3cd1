// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "atomicfile.h"

/* A short write is not an error by itself: go on until all is written. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

/* Create a fresh temp file next to path: never follows a planted link. */
static int open_temp(const char *path, char *tmp, size_t size)
{
	int fd, i;

	for (i = 0; i < 100; i++) {
		snprintf(tmp, size, "%s.tmp.%d.%d", path, (int)getpid(), i);
		fd = open(tmp,
			  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			  0600);
		if (fd >= 0 || errno != EEXIST)
			return fd < 0 ? -errno : fd;
	}
	return -EEXIST;
}

/* The temp file's contents and owner, flushed when asked. */
static int fill(int fd, const char *text, size_t len,
		const struct atomicfile_opts *o)
{
	int err;

	/* Failing (root squashed on NFS), it stays root's: still written. */
	if (o->uid != ATOMICFILE_KEEP_OWNER && fchown(fd, o->uid, o->gid))
		errno = 0;
	err = write_all(fd, text, len);
	if (!err && o->newline && (!len || text[len - 1] != '\n'))
		err = write_all(fd, "\n", 1);
	if (!err && o->durable && fsync(fd))
		err = -errno;
	return err;
}

int atomicfile__write(const char *path, const char *text, size_t len,
		      const struct atomicfile_opts *o)
{
	char tmp[4200];
	int fd, err;

	fd = open_temp(path, tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	err = fill(fd, text, len, o);
	if (close(fd) && !err)
		err = -errno;
	if (!err) {
		if (o->replace)
			err = rename(tmp, path) ? -errno : 0;
		else
			err = link(tmp, path) ? -errno : 0;
	}
	if (err || !o->replace)
		unlink(tmp);
	return err;
}

/* Hand files to the user behind sudo, so they can read and delete them. */
void atomicfile__sudo_user(uid_t *uid, gid_t *gid)
{
	const char *u = getenv("SUDO_UID"), *g = getenv("SUDO_GID");

	*uid = ATOMICFILE_KEEP_OWNER;
	*gid = (gid_t)-1;
	if (u && g && geteuid() == 0) {
		*uid = strtoul(u, NULL, 10);
		*gid = strtoul(g, NULL, 10);
	}
}
