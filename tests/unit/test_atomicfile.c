// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include "lib/atomicfile.h"
#include "unit.h"

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/memprof-atomic-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* Whole contents of a file, NUL-terminated (static buffer). */
static const char *contents(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	size_t n;

	cr_assert_not_null(f, "%s", path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int files_in_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Without replace a taken name is left alone, and no temp file stays. */
Test(atomicfile, never_clobbers_unless_replacing, .init = make_dir,
     .fini = remove_dir, .timeout = 10)
{
	struct atomicfile_opts keep = { .uid = ATOMICFILE_KEEP_OWNER };
	struct atomicfile_opts over = { .replace = true,
					.uid = ATOMICFILE_KEEP_OWNER };
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/f", dir);
	cr_assert_eq(atomicfile__write(path, "one", 3, &keep), 0);
	cr_assert_eq(atomicfile__write(path, "two", 3, &keep), -EEXIST);
	cr_assert_str_eq(contents(path), "one");
	cr_assert_eq(atomicfile__write(path, "three", 5, &over), 0);
	cr_assert_str_eq(contents(path), "three");
	cr_assert_eq(files_in_dir(), 1, "no temp file left behind");
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
}

/* Snapshots end with a newline; the publish files are written as given. */
Test(atomicfile, newline_only_when_asked_and_missing, .init = make_dir,
     .fini = remove_dir, .timeout = 10)
{
	struct atomicfile_opts o = { .replace = true,
				     .newline = true,
				     .durable = true,
				     .uid = ATOMICFILE_KEEP_OWNER };
	char path[128];

	snprintf(path, sizeof(path), "%s/f", dir);
	cr_assert_eq(atomicfile__write(path, "{}", 2, &o), 0);
	cr_assert_str_eq(contents(path), "{}\n");
	cr_assert_eq(atomicfile__write(path, "{}\n", 3, &o), 0);
	cr_assert_str_eq(contents(path), "{}\n");
	cr_assert_eq(atomicfile__write(path, "", 0, &o), 0);
	cr_assert_str_eq(contents(path), "\n");
	o.newline = false;
	cr_assert_eq(atomicfile__write(path, "{}", 2, &o), 0);
	cr_assert_str_eq(contents(path), "{}");
}

/* The owner is set before the name appears: a reader never sees root's. */
Test(atomicfile, owner_and_missing_directory, .init = make_dir,
     .fini = remove_dir, .timeout = 10)
{
	struct atomicfile_opts o = { .replace = true,
				     .uid = 4242,
				     .gid = 4343 };
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/f", dir);
	cr_assert_eq(atomicfile__write(path, "x", 1, &o), 0);
	cr_assert_eq(stat(path, &st), 0);
	if (geteuid() == 0) {
		cr_assert_eq(st.st_uid, 4242);
		cr_assert_eq(st.st_gid, 4343);
	}
	cr_assert_eq(atomicfile__write("/nonexistent/dir/f", "x", 1, &o),
		     -ENOENT);
}

Test(atomicfile, sudo_user_from_environment, .timeout = 10)
{
	uid_t uid;
	gid_t gid;

	setenv("SUDO_UID", "1000", 1);
	setenv("SUDO_GID", "1001", 1);
	atomicfile__sudo_user(&uid, &gid);
	if (geteuid() == 0) {
		cr_assert_eq(uid, 1000);
		cr_assert_eq(gid, 1001);
	}
	unsetenv("SUDO_UID");
	atomicfile__sudo_user(&uid, &gid);
	cr_assert_eq(uid, ATOMICFILE_KEEP_OWNER);
}
