"""Kinds of targets: non-PIE executables, static binaries, Python."""
import subprocess

from conftest import by_function, load, run_agent

SRC = r"""
#include <stdlib.h>
/* Taking malloc's address gives a non-PIE executable an import symbol
 * with a value: it must not be mistaken for a malloc definition. */
void *(*volatile keep_addr)(size_t) = malloc;
__attribute__((noinline)) void *site_malloc(void) { return malloc(12345); }
__attribute__((noinline)) void *site_calloc(void) { return calloc(3, 1000); }
__attribute__((noinline)) void *site_realloc(void *p) { return realloc(p, 7000); }
int main(void)
{
	void *a = site_malloc(), *b = site_calloc(), *c = site_realloc(NULL);
	free(b);
	return a && c ? 0 : 1;
}
"""


def build(tmp_path, name, *flags):
    src = tmp_path / (name + ".c")
    src.write_text(SRC)
    exe = tmp_path / name
    subprocess.run(["gcc", "-O0", "-g", "-fno-builtin"] + list(flags) +
                   [str(src), "-o", str(exe)], check=True)
    return exe


def check(tmp_path, exe):
    out = tmp_path / "peak.json"
    r = run_agent(["-o", str(out), "--", str(exe)])
    assert r.returncode == 0, r.stderr
    snap = load(out)
    peak = by_function(snap["peak"])
    assert peak["site_malloc"] == (12345, 1)
    assert peak["site_calloc"] == (3000, 1)
    assert peak["site_realloc"] == (7000, 1)
    assert snap["peak"]["bytes"] - 22345 <= 8192
    assert "site_calloc" not in by_function(snap["current"])


def test_non_pie_executable(tmp_path):
    check(tmp_path, build(tmp_path, "nopie", "-no-pie"))


def test_static_executable(tmp_path):
    # No libc mapped: malloc is found in the executable itself.
    check(tmp_path, build(tmp_path, "static", "-static"))


def test_python_numpy_array_bytes(tmp_path):
    out = tmp_path / "py.json"
    code = ("import numpy as np\n"
            "a = np.ones(10**7)\n"        # 80,000,000 bytes of data
            "b = [str(i) for i in range(200000)]\n"
            "del a\n")
    r = run_agent(["-o", str(out), "--", "/usr/bin/python3.11", "-c", code])
    assert r.returncode == 0, r.stderr
    snap = load(out)
    assert snap["dropped_events"] == 0
    top = snap["peak"]["stacks"][0]
    assert top["bytes"] == 80000000 and top["count"] == 1
    assert "_multiarray_umath" in top["frames"][-1]["module"]
    # Gone from "current" once deleted.
    assert all(s["bytes"] != 80000000 for s in snap["current"]["stacks"])
