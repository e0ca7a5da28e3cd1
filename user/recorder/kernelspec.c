// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * memprof-bpf kernelspec install: a Jupyter kernel spec, "Python 3
 * (memprof)", whose kernels start with the in-process recorder preloaded
 * and waiting (MEMPROF_RECORDER=wait). Such a kernel costs one load per
 * allocation until `memprof-bpf --comm ipykernel` adopts its ring; then
 * it records without a trap per call (recording.c). Any other kernel is
 * attached with uprobes, as ever.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lib/log.h"
#include "recorder/kernelspec.h"
#include "recorder/recording.h"

static const char usage[] =
	"usage: memprof-bpf kernelspec install [--user | --prefix DIR]\n"
	"                                      [--name NAME] [--python PATH]\n"
	"Install a Jupyter kernel spec, \"Python 3 (memprof)\": its kernels\n"
	"record their allocations in-process, for memprof-bpf --comm\n"
	"ipykernel to read without a uprobe trap per call.\n"
	"  --user         in your own Jupyter data folder (SUDO_USER's under\n"
	"                 sudo), not /usr/local/share/jupyter\n"
	"  --prefix DIR   in DIR/share/jupyter (a virtualenv or conda env)\n"
	"  --name NAME    the spec's folder (default python3-memprof)\n"
	"  --python PATH  the interpreter (default: python3 on PATH)\n";

struct spec_opts {
	bool user;
	const char *prefix, *name, *python;
};

static int parse(int argc, char **argv, struct spec_opts *o)
{
	static const struct option longopts[] = {
		{ "user", no_argument, NULL, 'u' },
		{ "prefix", required_argument, NULL, 'P' },
		{ "name", required_argument, NULL, 'n' },
		{ "python", required_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	*o = (struct spec_opts){ .name = "python3-memprof",
				 .python = "python3" };
	optind = 0;
	opterr = 0;
	if (argc < 2 || strcmp(argv[1], "install")) {
		log_err("kernelspec: the only action is 'install'; try "
			"memprof-bpf kernelspec --help");
		return argc > 1 && !strcmp(argv[1], "--help") ? 1 : -1;
	}
	while ((c = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) !=
	       -1) {
		if (c == 'u')
			o->user = true;
		else if (c == 'P')
			o->prefix = optarg;
		else if (c == 'n')
			o->name = optarg;
		else if (c == 'y')
			o->python = optarg;
		else if (c == 'h')
			return 1;
		else {
			log_err("kernelspec: bad option '%s'; try --help",
				argv[optind]);
			return -1;
		}
	}
	if (o->user && o->prefix) {
		log_err("kernelspec: --user or --prefix, not both");
		return -1;
	}
	if (!*o->name || strchr(o->name, '/')) {
		log_err("kernelspec: --name '%s': not a folder name", o->name);
		return -1;
	}
	return 0;
}

/* An interpreter on PATH, as an absolute path: the kernel's argv[0]. */
static int find_python(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH");
	char dir[PATH_MAX];
	const char *p, *e;

	if (strchr(name, '/')) {
		snprintf(out, size, "%s", name);
		return access(out, X_OK) ? -errno : 0;
	}
	for (p = path ? path : "/usr/bin:/bin"; *p; p = *e ? e + 1 : e) {
		e = strchrnul(p, ':');
		if ((size_t)(e - p) + strlen(name) + 2 > size)
			continue;
		snprintf(dir, sizeof(dir), "%.*s", (int)(e - p), p);
		strcpy(out, dir);
		strcat(out, "/");
		strcat(out, name);
		if (!access(out, X_OK))
			return 0;
	}
	return -ENOENT;
}

/*
 * The user who asked: SUDO_USER under sudo (the spec goes in their home,
 * owned by them), else whoever runs this.
 */
static const struct passwd *asking_user(void)
{
	const char *sudo = getenv("SUDO_USER");
	const struct passwd *pw = sudo && *sudo ? getpwnam(sudo) : NULL;

	return pw ? pw : getpwuid(getuid());
}

/* Where the spec's folder goes (the same rules as jupyter kernelspec). */
static int spec_dir(const struct spec_opts *o, char *out, size_t size,
		    const struct passwd **owner)
{
	const char *data = getenv("JUPYTER_DATA_DIR");

	*owner = NULL;
	if (o->prefix) {
		snprintf(out, size, "%s/share/jupyter/kernels/%s", o->prefix,
			 o->name);
		return 0;
	}
	if (!o->user) {
		snprintf(out, size, "/usr/local/share/jupyter/kernels/%s",
			 o->name);
		return 0;
	}
	*owner = asking_user();
	if (data && *data && !getenv("SUDO_USER"))
		snprintf(out, size, "%s/kernels/%s", data, o->name);
	else if (*owner)
		snprintf(out, size, "%s/.local/share/jupyter/kernels/%s",
			 (*owner)->pw_dir, o->name);
	else
		return -ENOENT;
	return 0;
}

/* mkdir -p, each new folder given to owner (when not root's own). */
static int make_dirs(char *path, const struct passwd *owner)
{
	char *s;

	for (s = path + 1;; s++) {
		if (*s && *s != '/')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(path, 0755) == 0) {
			if (owner && chown(path, owner->pw_uid, owner->pw_gid))
				log_warn("%s: chown: %s", path,
					 strerror(errno));
		} else if (errno != EEXIST) {
			int err = -errno;

			*s = c;
			return err;
		}
		*s = c;
		if (!c)
			return 0;
	}
}

static json_t *spec_json(const char *python, const char *so)
{
	return json_pack("{s:[s,s,s,s,s], s:s, s:s, s:{s:s, s:s}, "
			 "s:{s:{s:s}}}",
			 "argv", python, "-m", "ipykernel_launcher", "-f",
			 "{connection_file}", "display_name",
			 "Python 3 (memprof)", "language", "python", "env",
			 "LD_PRELOAD", so, "MEMPROF_RECORDER", "wait",
			 "metadata", "memprof-bpf", "recorder", so);
}

int kernelspec__main(int argc, char **argv)
{
	char python[PATH_MAX], so[PATH_MAX], dir[PATH_MAX], file[PATH_MAX + 16];
	const struct passwd *owner;
	struct spec_opts o;
	json_t *spec;
	int err = parse(argc, argv, &o);

	if (err)
		return err > 0 ? (fputs(usage, stdout), 0) : 2;
	if (find_python(o.python, python, sizeof(python))) {
		log_err("kernelspec: no interpreter '%s' (give --python PATH)",
			o.python);
		return 2;
	}
	if ((err = recording__library(so, sizeof(so)))) {
		log_err("kernelspec: the recorder library: %s", strerror(-err));
		return 2;
	}
	if (spec_dir(&o, dir, sizeof(dir), &owner) ||
	    (err = make_dirs(dir, owner))) {
		log_err("kernelspec: %s: %s", dir,
			strerror(err ? -err : ENOENT));
		return 2;
	}
	snprintf(file, sizeof(file), "%s/kernel.json", dir);
	spec = spec_json(python, so);
	if (!spec || json_dump_file(spec, file, JSON_INDENT(1))) {
		log_err("kernelspec: %s: cannot write it", file);
		json_decref(spec);
		return 2;
	}
	json_decref(spec);
	if (owner && chown(file, owner->pw_uid, owner->pw_gid))
		log_warn("%s: chown: %s", file, strerror(errno));
	printf("installed kernel spec \"Python 3 (memprof)\" in %s\n", dir);
	return 0;
}
