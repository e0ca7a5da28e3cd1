// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Interpreter detection against the real interpreters on the machine:
 * pyenv 3.8-3.13 (shared libpython) and Debian's python3.11 (non-PIE,
 * libpython linked in). Each detected layout is cross-checked by reading
 * the live process: autoTSSkey initialized, the first thread state's
 * interp pointer equal to the interpreter it hangs from, and the object
 * header offsets (str, bytes, type) against objects Python names by id().
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include "procs/pyruntime.h"
#include "unit.h"

/*
 * Start python -c CODE with stdout on a pipe; wait for its line "ready"
 * and the objects check_objects() reads: a str built at run time (its
 * address, hash, length), a bytes object (address, length) and the code
 * object type (address, tp_basicsize).
 */
static pid_t start_python(const char *exe, char *buf, size_t size)
{
	static const char code[] = "import sys, time\n"
				   "s = ''.join(['memprof-'] * 4)\n"
				   "b = bytes(range(97, 106))\n"
				   "c = type((lambda: 0).__code__)\n"
				   "print('ready', id(s), hash(s), len(s), "
				   "id(b), len(b), id(c),\n"
				   "      c.__basicsize__, flush=True)\n"
				   "time.sleep(30)\n";
	ssize_t n, got = 0;
	int fds[2];
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		execl(exe, exe, "-c", code, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (got < (ssize_t)size - 1 &&
	       (n = read(fds[0], buf + got, size - 1 - got)) > 0) {
		got += n;
		if (buf[got - 1] == '\n')
			break;
	}
	buf[got] = '\0';
	cr_assert_gt(got, 0, "%s did not start", exe);
	close(fds[0]);
	return pid;
}

static void stop_python(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static uint64_t peek(int fd, uint64_t addr, size_t size)
{
	uint64_t v = 0;

	cr_assert_eq(pread(fd, &v, size, addr), (ssize_t)size, "read at 0x%llx",
		     (unsigned long long)addr);
	return v;
}

/* The layout must lead from _PyRuntime to a consistent thread state. */
static void check_live_layout(pid_t pid, const struct py_runtime *rt)
{
	const struct py_layout *l = rt->layout;
	char fname[64];
	uint64_t interp, tstate;
	int fd;

	snprintf(fname, sizeof(fname), "/proc/%d/mem", pid);
	fd = open(fname, O_RDONLY);
	cr_assert_geq(fd, 0);
	/* Py_tss_t {int _is_initialized; pthread_key_t _key} */
	cr_assert_eq(peek(fd, rt->runtime + l->tss_key - 4, 4), 1);
	cr_assert_lt(peek(fd, rt->runtime + l->tss_key, 4), 32);
	interp = peek(fd, rt->runtime + l->interp_head, 8);
	cr_assert_neq(interp, 0);
	tstate = peek(fd, interp + l->interp_threads, 8);
	cr_assert_neq(tstate, 0);
	cr_assert_eq(peek(fd, tstate + l->ts_interp, 8), interp);
	close(fd);
}

/* Whether addr lies in an executable mapping of pid. */
static bool in_code(pid_t pid, uint64_t addr)
{
	unsigned long long lo, hi;
	char fname[64], line[4400], perms[8];
	bool found = false;
	FILE *f;

	snprintf(fname, sizeof(fname), "/proc/%d/maps", pid);
	f = fopen(fname, "r");
	cr_assert_not_null(f);
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) == 3 &&
			perms[2] == 'x' && addr >= lo && addr < hi;
	fclose(f);
	return found;
}

/*
 * The object header offsets the BPF walker reads (str_identity, the line
 * table copy) and code_dealloc's discovery uses (tp_dealloc), checked on
 * the objects start_python() printed.
 */
static void check_objects(pid_t pid, const struct py_layout *l,
			  const char *ready)
{
	unsigned long long s, slen, b, blen, c, basicsize;
	long long hash;
	char fname[64], text[64];
	int fd;

	cr_assert_eq(sscanf(ready, "ready %llu %lld %llu %llu %llu %llu %llu",
			    &s, &hash, &slen, &b, &blen, &c, &basicsize),
		     7, "python said: %s", ready);
	snprintf(fname, sizeof(fname), "/proc/%d/mem", pid);
	fd = open(fname, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(peek(fd, s + l->str_length, 8), slen);
	cr_assert_eq((long long)peek(fd, s + l->str_hash, 8), hash);
	cr_assert_eq(pread(fd, text, slen, s + l->ascii_data), (ssize_t)slen);
	cr_assert_eq(memcmp(text, "memprof-memprof-memprof-memprof-", slen), 0);
	cr_assert_eq(peek(fd, b + l->bytes_size, 8), blen);
	cr_assert_eq(pread(fd, text, blen, b + l->bytes_data), (ssize_t)blen);
	cr_assert_eq(memcmp(text, "abcdefghi", blen), 0);
	/* tp_basicsize, tp_itemsize, then tp_dealloc: a function. */
	cr_assert_eq(peek(fd, c + l->tp_dealloc - 16, 8), basicsize);
	cr_assert(in_code(pid, peek(fd, c + l->tp_dealloc, 8)));
	close(fd);
}

static void check_interpreter(const char *exe, int major, int minor)
{
	char ready[256];
	struct py_runtime rt;
	pid_t pid;
	int err;

	if (access(exe, X_OK) != 0)
		cr_skip_test("%s is not installed", exe);
	pid = start_python(exe, ready, sizeof(ready));
	err = pyruntime__detect(pid, &rt);
	if (err == 0) {
		check_live_layout(pid, &rt);
		check_objects(pid, rt.layout, ready);
	}
	stop_python(pid);
	cr_assert_eq(err, 0, "%s: detect returned %d", exe, err);
	cr_assert_eq(rt.major, major);
	cr_assert_eq(rt.minor, minor);
	cr_assert_not_null(rt.layout);
	cr_assert_eq(rt.runtime_size, rt.layout->runtime_size);
}

#define PYENV "/root/.pyenv/versions/"

Test(pyruntime, pyenv_3_8, .timeout = 30)
{
	check_interpreter(PYENV "3.8.18/bin/python3.8", 3, 8);
}

Test(pyruntime, pyenv_3_9, .timeout = 30)
{
	check_interpreter(PYENV "3.9.18/bin/python3.9", 3, 9);
}

Test(pyruntime, pyenv_3_10, .timeout = 30)
{
	check_interpreter(PYENV "3.10.13/bin/python3.10", 3, 10);
}

Test(pyruntime, pyenv_3_11, .timeout = 30)
{
	check_interpreter(PYENV "3.11.7/bin/python3.11", 3, 11);
}

Test(pyruntime, pyenv_3_12, .timeout = 30)
{
	check_interpreter(PYENV "3.12.1/bin/python3.12", 3, 12);
}

Test(pyruntime, pyenv_3_13_debug_offsets, .timeout = 30)
{
	check_interpreter(PYENV "3.13.0/bin/python3.13", 3, 13);
}

Test(pyruntime, debian_python3_11_non_pie, .timeout = 30)
{
	check_interpreter("/usr/bin/python3.11", 3, 11);
}

Test(pyruntime, not_python, .timeout = 10)
{
	struct py_runtime rt;

	/* The test binary itself has no _PyRuntime. */
	cr_assert_eq(pyruntime__detect(getpid(), &rt), -ENOENT);
}

Test(pyruntime, versions_from_paths, .timeout = 10)
{
	int ma, mi;

	cr_assert_eq(pyruntime__version_from_path("/usr/bin/python3.11", &ma,
						  &mi),
		     0);
	cr_assert(ma == 3 && mi == 11);
	cr_assert_eq(pyruntime__version_from_path("/x/lib/libpython3.12.so.1.0",
						  &ma, &mi),
		     0);
	cr_assert(ma == 3 && mi == 12);
	cr_assert_neq(pyruntime__version_from_path("/usr/bin/perl", &ma, &mi),
		      0);
	cr_assert_null(pyruntime__layout(3, 7));
	cr_assert_null(pyruntime__layout(3, 16));
}

/* Object headers: alike in 3.8-3.15 (docs/cpython-offsets.md). */
Test(pyruntime, object_headers_in_every_layout, .timeout = 10)
{
	const struct py_layout *l;
	int minor;

	for (minor = 8; minor <= 15; minor++) {
		l = pyruntime__layout(3, minor);
		cr_assert_not_null(l, "3.%d", minor);
		cr_assert_eq(l->str_length, 0x10, "3.%d", minor);
		cr_assert_eq(l->str_hash, 0x18, "3.%d", minor);
		cr_assert_eq(l->bytes_size, 0x10, "3.%d", minor);
		cr_assert_eq(l->bytes_data, 0x20, "3.%d", minor);
		cr_assert_eq(l->tp_dealloc, 48, "3.%d", minor);
	}
}

/* 3.13+: _Py_DebugOffsets' cookie and version must say this interpreter. */
Test(pyruntime, debug_header_cookie_and_version_checked, .timeout = 10)
{
	unsigned char hdr[16] = "xdebugpy";
	uint64_t v = 0x030d00f0; /* 3.13.0 final */
	char why[160] = "";

	memcpy(hdr + 8, &v, sizeof(v));
	cr_assert_eq(
		pyruntime__check_debug_header(hdr, 3, 13, why, sizeof(why)), 0);
	cr_assert_str_empty(why);
	cr_assert_eq(pyruntime__check_debug_header(hdr, 3, 14, why,
						   sizeof(why)),
		     -ENOTSUP);
	cr_assert_str_eq(why, "its _Py_DebugOffsets says version 3.13, not "
			      "3.14");
	hdr[0] = 'X';
	cr_assert_eq(pyruntime__check_debug_header(hdr, 3, 13, why,
						   sizeof(why)),
		     -ENOTSUP);
	cr_assert_str_eq(why, "its _PyRuntime does not start with "
			      "_Py_DebugOffsets' cookie");
}

/*
 * The first bytes of .PyRuntime (_Py_DebugOffsets) copied from the real
 * files: pyenv's libpython3.13.so.1.0 (3.13.0) and Debian unstable's
 * python3.14 (3.14.10) and python3.15 (3.15.2), with _PyRuntime's size.
 */
struct fixture {
	const char *file;
	int minor;
	uint64_t runtime_size;
};

static const struct fixture fixtures[] = {
	{ "tests/unit/data/debug-offsets-3.13.0.bin", 13, 0x452b8 },
	{ "tests/unit/data/debug-offsets-3.14.10.bin", 14, 0x4d4c8 },
	{ "tests/unit/data/debug-offsets-3.15.2.bin", 15, 0x549c8 },
};

static size_t load_fixture(const struct fixture *f, unsigned char *buf,
			   size_t size)
{
	int fd = open(f->file, O_RDONLY);
	ssize_t n;

	cr_assert_geq(fd, 0, "%s (run from the source tree)", f->file);
	n = read(fd, buf, size);
	close(fd);
	cr_assert_gt(n, 0x200);
	return n;
}

/* What the table's row says for the fields _Py_DebugOffsets carries. */
static void same_walker_fields(const struct py_layout *a,
			       const struct py_layout *b, int minor)
{
	cr_assert_eq(a->interp_head, b->interp_head, "3.%d", minor);
	cr_assert_eq(a->interp_threads, b->interp_threads, "3.%d", minor);
	cr_assert_eq(a->ts_next, b->ts_next, "3.%d", minor);
	cr_assert_eq(a->ts_interp, b->ts_interp, "3.%d", minor);
	cr_assert_eq(a->ts_frame, b->ts_frame, "3.%d", minor);
	cr_assert_eq(a->ts_thread_id, b->ts_thread_id, "3.%d", minor);
	cr_assert_eq(a->ts_datastack, b->ts_datastack, "3.%d", minor);
	cr_assert_eq(a->fr_back, b->fr_back, "3.%d", minor);
	cr_assert_eq(a->fr_code, b->fr_code, "3.%d", minor);
	cr_assert_eq(a->fr_instr, b->fr_instr, "3.%d", minor);
	cr_assert_eq(a->fr_owner, b->fr_owner, "3.%d", minor);
	cr_assert_eq(a->co_filename, b->co_filename, "3.%d", minor);
	cr_assert_eq(a->co_name, b->co_name, "3.%d", minor);
	cr_assert_eq(a->co_qualname, b->co_qualname, "3.%d", minor);
	cr_assert_eq(a->co_firstlineno, b->co_firstlineno, "3.%d", minor);
	cr_assert_eq(a->co_linetable, b->co_linetable, "3.%d", minor);
	cr_assert_eq(a->co_code_start, b->co_code_start, "3.%d", minor);
	cr_assert_eq(a->ascii_data, b->ascii_data, "3.%d", minor);
	cr_assert_eq(a->str_length, b->str_length, "3.%d", minor);
	cr_assert_eq(a->bytes_size, b->bytes_size, "3.%d", minor);
	cr_assert_eq(a->bytes_data, b->bytes_data, "3.%d", minor);
}

/* Parsed from the real structs, 3.13-3.15 agree with the measured rows. */
Test(pyruntime, debug_offsets_of_real_builds_parse_to_the_table)
{
	unsigned char buf[0x400];
	char why[160];
	size_t i, n;

	for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		const struct fixture *f = &fixtures[i];
		const struct py_layout *row = pyruntime__layout(3, f->minor);
		struct py_layout l = *row;

		n = load_fixture(f, buf, sizeof(buf));
		memset(&l, 0xee, offsetof(struct py_layout, tss_key));
		l.major = 3, l.minor = f->minor; /* the rest: scribbled */
		memset(&l.interp_head, 0xee,
		       offsetof(struct py_layout, tp_dealloc) -
			       offsetof(struct py_layout, interp_head));
		why[0] = '\0';
		cr_assert_eq(pyruntime__parse_debug_offsets(buf, n,
							    f->runtime_size, &l,
							    why, sizeof(why)),
			     0, "3.%d: %s", f->minor, why);
		same_walker_fields(&l, row, f->minor);
		cr_assert_eq(l.runtime_size, f->runtime_size);
	}
}

/* Parse one fixture after edit() changed it: the reason, or "" if taken. */
static const char *parse_edited(int minor, uint64_t runtime_size,
				void (*edit)(unsigned char *), char *why,
				size_t size)
{
	unsigned char buf[0x400];
	struct py_layout l;
	size_t n = 0, i;

	for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++)
		if (fixtures[i].minor == minor)
			n = load_fixture(&fixtures[i], buf, sizeof(buf));
	cr_assert_gt(n, 0);
	if (edit)
		edit(buf);
	l = *pyruntime__layout(3, minor);
	why[0] = '\0';
	if (pyruntime__parse_debug_offsets(buf, n, runtime_size, &l, why,
					   size) == 0)
		cr_assert_str_empty(why);
	else
		cr_assert_str_not_empty(why);
	return why;
}

static void put64(unsigned char *buf, size_t at, uint64_t v)
{
	memcpy(buf + at, &v, sizeof(v));
}

static void bad_cookie(unsigned char *b)
{
	b[1] = 'D';
}

static void version_3_16(unsigned char *b)
{
	put64(b, 8, 0x031000f0);
}

static void free_threaded(unsigned char *b)
{
	put64(b, 0x10, 1);
}

/* 3.14: interpreter_frame.owner at 0x120 says the frame is 0x400 bytes. */
static void owner_far_out(unsigned char *b)
{
	put64(b, 0x120, 0x400);
}

/* 3.14: a patch release moving thread_state.current_frame is followed. */
static void frame_moved(unsigned char *b)
{
	put64(b, 0xd0, 0x50);
}

/* Each way a struct can fail to be the one we parse: one reason each. */
Test(pyruntime, debug_offsets_refused_with_one_reason)
{
	char why[160];
	unsigned char buf[0x400];
	struct py_layout l;

	cr_assert_str_eq(parse_edited(14, 0x4d4c8, NULL, why, sizeof(why)), "");
	cr_assert_str_eq(parse_edited(14, 0x4d4c8, bad_cookie, why,
				      sizeof(why)),
			 "its _PyRuntime does not start with "
			 "_Py_DebugOffsets' cookie");
	cr_assert_str_eq(parse_edited(14, 0x4d4c8, version_3_16, why,
				      sizeof(why)),
			 "its _Py_DebugOffsets says version 3.16, not 3.14");
	cr_assert_str_eq(parse_edited(15, 0x549c8, free_threaded, why,
				      sizeof(why)),
			 "it is a free-threaded build (3.15t), whose frames "
			 "memprof-bpf cannot walk yet");
	cr_assert_str_eq(parse_edited(14, 0x4d4c0, NULL, why, sizeof(why)),
			 "its _Py_DebugOffsets says _PyRuntime is 316616 "
			 "bytes, its symbol 316608");
	cr_assert_str_eq(parse_edited(14, 0x4d4c8, owner_far_out, why,
				      sizeof(why)),
			 "its _Py_DebugOffsets puts a frame's owner at 0x400, "
			 "beyond what memprof-bpf reads (0x58)");
	/* A moved field is read where the process says it is. */
	load_fixture(&fixtures[1], buf, sizeof(buf));
	frame_moved(buf);
	l = *pyruntime__layout(3, 14);
	cr_assert_eq(pyruntime__parse_debug_offsets(buf, sizeof(buf), 0x4d4c8,
						    &l, why, sizeof(why)),
		     0);
	cr_assert_eq(l.ts_frame, 0x50);
	/* Too short for its version's struct. */
	cr_assert_eq(pyruntime__parse_debug_offsets(buf, 0x100, 0x4d4c8, &l,
						    why, sizeof(why)),
		     -ENOTSUP);
}

/*
 * PyGILState_GetThisThreadState's first bytes as the builds have them
 * (objdump), decoded to where the bound thread state lives.
 */
Test(pyruntime, thread_state_place_decoded_from_code)
{
	/* Debian 3.14.10 at 0x42c79a: endbr64; cmpl $0x0,0x77493b(%rip) */
	static const uint8_t c314[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x83, 0x3d,
					0x3b, 0x49, 0x77, 0x00, 0x00, 0x74,
					0x0a, 0xbf, 0xe0, 0x10, 0xba, 0x00 };
	/* Debian 3.15.2: endbr64; mov %fs:0xffffffffffffffd8,%rax; ret */
	static const uint8_t c315[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x64,
					0x48, 0x8b, 0x04, 0x25, 0xd8,
					0xff, 0xff, 0xff, 0xc3 };
	/* pyenv 3.13.0 (PIC): mov GOT(%rip),%rax; push %rbx; lea 0x870(%rax) */
	static const uint8_t c313[] = { 0x48, 0x8b, 0x05, 0xe9, 0x6b, 0x25,
					0x00, 0x53, 0x48, 0x8d, 0x98, 0x70,
					0x08, 0x00, 0x00, 0x48, 0x89, 0xdf };
	static const uint8_t other[] = { 0x55, 0x48, 0x89, 0xe5, 0x53, 0x48,
					 0x83, 0xec, 0x08, 0x90, 0x90, 0x90 };
	struct py_layout l = { 0 };

	cr_assert_eq(pyruntime__decode_tstate(c314, sizeof(c314), 0x42c79a,
					      0xba07c0, &l),
		     0);
	cr_assert_eq(l.tss_key, 0x924);
	cr_assert_eq(l.tls_off, 0);
	cr_assert_eq(pyruntime__decode_tstate(c315, sizeof(c315), 0x42fa7d,
					      0xc408a0, &l),
		     0);
	cr_assert_eq(l.tls_off, -0x28);
	cr_assert_eq(l.tss_key, 0);
	cr_assert_eq(pyruntime__decode_tstate(c313, sizeof(c313), 0x2940c0,
					      0x5294c0, &l),
		     0);
	cr_assert_eq(l.tss_key, 0x874);
	cr_assert_eq(l.tls_off, 0);
	cr_assert_eq(pyruntime__decode_tstate(other, sizeof(other), 0x1000,
					      0x2000, &l),
		     -ENOENT);
}
