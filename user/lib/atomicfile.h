/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one way this agent writes a file: a 0600 temp file created with
 * O_EXCL|O_NOFOLLOW next to the target (never follows a planted link),
 * written whole, then renamed over the target or linked to a fresh name.
 * A reader sees the old file or the new one, never half of one.
 */
#ifndef MEMPROF_ATOMICFILE_H
#define MEMPROF_ATOMICFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ATOMICFILE_KEEP_OWNER ((uid_t)-1)

struct atomicfile_opts {
	bool replace; /* rename over an existing file; else -EEXIST if taken */
	bool durable; /* fsync before it is named: snapshots outlive a crash */
	bool newline; /* end the file with '\n' if text does not */
	uid_t uid; /* owner, or ATOMICFILE_KEEP_OWNER (root's) */
	gid_t gid;
};

/* Write len bytes of text to path as opts say; 0 or -errno. */
int atomicfile__write(const char *path, const char *text, size_t len,
		      const struct atomicfile_opts *opts);
/* The user behind sudo (SUDO_UID/SUDO_GID), else ATOMICFILE_KEEP_OWNER. */
void atomicfile__sudo_user(uid_t *uid, gid_t *gid);

#endif
