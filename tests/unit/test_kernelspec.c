// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include "recorder/kernelspec.h"
#include "unit.h"

#define ARGC(v) ((int)(sizeof(v) / sizeof((v)[0])) - 1)

static char err[4096], out[4096];

/* Run the subcommand, capturing stdout and stderr. */
static int run(int argc, char **argv)
{
	struct capture o, e;
	int ret;

	capture_begin(&o, 1);
	capture_begin(&e, 2);
	ret = kernelspec__main(argc, argv);
	capture_end(&e, err, sizeof(err));
	capture_end(&o, out, sizeof(out));
	return ret;
}

/* The library the spec preloads, for the agent's own checkout. */
static void use_built_library(void)
{
	char so[PATH_MAX];

	cr_assert_not_null(realpath("build/libmemprof-recorder.so", so),
			   "build/libmemprof-recorder.so is not built");
	setenv("MEMPROF_BPF_RECORDER", so, 1);
}

/* --prefix DIR: DIR/share/jupyter/kernels/NAME/kernel.json, as Jupyter
 * reads it: the interpreter, ipykernel, and the recorder waiting. */
Test(kernelspec, install_under_a_prefix, .timeout = 10)
{
	char dir[] = "/tmp/memprof-ks-XXXXXX", path[PATH_MAX];
	char *argv[] = { "kernelspec", "install",  "--prefix", dir, "--name",
			 "nb",	       "--python", "/bin/sh",  NULL };
	json_t *spec, *env;
	json_error_t jerr;

	use_built_library();
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(run(ARGC(argv), argv), 0, "%s", err);
	snprintf(path, sizeof(path), "%s/share/jupyter/kernels/nb/kernel.json",
		 dir);
	cr_assert(strstr(out, "installed kernel spec"), "%s", out);
	spec = json_load_file(path, 0, &jerr);
	cr_assert_not_null(spec, "%s: %s", path, jerr.text);
	cr_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(spec, "argv"), 0)),
			 "/bin/sh");
	cr_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(spec, "argv"), 4)),
			 "{connection_file}");
	cr_assert_str_eq(json_string_value(json_object_get(spec, "display_"
								 "name")),
			 "Python 3 (memprof)");
	env = json_object_get(spec, "env");
	cr_assert_str_eq(json_string_value(json_object_get(env, "MEMPROF_"
								"RECORDER")),
			 "wait");
	cr_assert_str_eq(json_string_value(json_object_get(env, "LD_PRELOAD")),
			 getenv("MEMPROF_BPF_RECORDER"));
	json_decref(spec);
	/* Again: the same spec, rewritten in place */
	cr_assert_eq(run(ARGC(argv), argv), 0, "%s", err);
	cr_assert_eq(access(path, R_OK), 0);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	cr_assert_eq(system(path), 0);
}

/* Bad input: one line, exit 2, nothing written. */
Test(kernelspec, bad_input, .timeout = 10)
{
	char *noverb[] = { "kernelspec", NULL };
	char *verb[] = { "kernelspec", "remove", NULL };
	char *opt[] = { "kernelspec", "install", "--bogus", NULL };
	char *both[] = { "kernelspec", "install", "--user",
			 "--prefix",   "/tmp",	  NULL };
	char *name[] = { "kernelspec", "install", "--name", "a/b", NULL };
	char *py[] = { "kernelspec", "install",	 "--prefix",
		       "/tmp",	     "--python", "/nonexistent/python3",
		       NULL };
	char **cases[] = { noverb, verb, opt, both, name, py };
	int argcs[] = { ARGC(noverb), ARGC(verb), ARGC(opt),
			ARGC(both),   ARGC(name), ARGC(py) };
	size_t i;

	use_built_library();
	for (i = 0; i < sizeof(argcs) / sizeof(argcs[0]); i++) {
		cr_assert_eq(run(argcs[i], cases[i]), 2, "case %zu", i);
		cr_assert_eq(count_lines(err), 1, "case %zu: '%s'", i, err);
		cr_assert_eq(strncmp(err, "memprof-bpf: kernelspec: ", 25), 0,
			     "case %zu: '%s'", i, err);
	}
}
