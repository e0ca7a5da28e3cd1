#!/usr/bin/env python3
"""Out-of-process re-implementation of the in-BPF Python stack walk.

Reads /proc/PID/mem (run as root) with exactly the reads a BPF program
would do, using the offset table in OFFSETS (the same numbers as
offsets.md), and checks them against the stacks the target reported.

usage: walker.py PID REPORT_JSON_LINE_FILE
"""
import json, os, re, struct, subprocess, sys

# ---- the table under test (bytes, x86-64, release builds) -------------------
OFFSETS = {
    # runtime: autoTSSkey._key offset in _PyRuntime, interpreters.head
    # tstate: frame-ish pointer, thread_id, native_thread_id, next; interp: threads head, next
    (3, 8):  dict(key=0x574, interp_head=0x20, is_tstate_head=0x08, is_next=0x00,
                  ts_next=0x08, ts_frame=0x18, ts_thread_id=0xb0, ts_native=None,
                  fr_back=0x18, fr_code=0x20, fr_lasti=0x68, kind="frameobject", lasti_units=1,
                  co_filename=0x68, co_name=0x70, co_qualname=None, co_firstlineno=0x28,
                  co_lines=0x78, co_code=0x30, ascii_size=48),
    (3, 9):  dict(key=0x24c, interp_head=0x20, is_tstate_head=0x08, is_next=0x00,
                  ts_next=0x08, ts_frame=0x18, ts_thread_id=0xb0, ts_native=None,
                  fr_back=0x18, fr_code=0x20, fr_lasti=0x68, kind="frameobject", lasti_units=1,
                  co_filename=0x68, co_name=0x70, co_qualname=None, co_firstlineno=0x28,
                  co_lines=0x78, co_code=0x30, ascii_size=48),
    (3, 10): dict(key=0x24c, interp_head=0x20, is_tstate_head=0x08, is_next=0x00,
                  ts_next=0x08, ts_frame=0x18, ts_thread_id=0xb0, ts_native=None,
                  fr_back=0x18, fr_code=0x20, fr_lasti=0x60, kind="frameobject", lasti_units=2,
                  co_filename=0x68, co_name=0x70, co_qualname=None, co_firstlineno=0x28,
                  co_lines=0x78, co_code=0x30, ascii_size=48),
    (3, 11): dict(key=0x254, interp_head=0x28, is_tstate_head=0x10, is_next=0x00,
                  ts_next=0x08, ts_cframe=0x38, cf_current=0x08, ts_thread_id=0x98, ts_native=0xa0,
                  fr_back=0x30, fr_code=0x20, fr_instr=0x38, fr_owner=0x45, fr_is_entry=0x44,
                  kind="iframe311",
                  co_filename=0x70, co_name=0x78, co_qualname=0x80, co_firstlineno=0x48,
                  co_lines=0x88, co_code_adaptive=0xb8, ascii_size=48),
    (3, 12): dict(key=0x60c, interp_head=0x28, is_tstate_head=0x48, is_next=0x00,
                  ts_next=0x08, ts_cframe=0x38, cf_current=0x00, ts_thread_id=0x88, ts_native=0x90,
                  fr_back=0x08, fr_code=0x00, fr_instr=0x38, fr_owner=0x46,
                  kind="iframe312",
                  co_filename=0x70, co_name=0x78, co_qualname=0x80, co_firstlineno=0x44,
                  co_lines=0x88, co_code_adaptive=0xc0, ascii_size=40),
    (3, 13): dict(key=0x874, interp_head=0x278, is_tstate_head=0x1cb0, is_next=0x1c60,
                  ts_next=0x08, ts_current_frame=0x48, ts_thread_id=0x98, ts_native=0xa0,
                  fr_back=0x08, fr_code=0x00, fr_instr=0x38, fr_owner=0x46,
                  kind="iframe313",
                  co_filename=0x70, co_name=0x78, co_qualname=0x80, co_firstlineno=0x44,
                  co_lines=0x88, co_code_adaptive=0xc8, ascii_size=40),
}
# glibc 2.36 x86-64 (from disassembly of pthread_getspecific)
PTHREAD_SPECIFIC_1STBLOCK = 0x310   # struct pthread.specific_1stblock
PTHREAD_SPECIFIC = 0x510            # struct pthread.specific[]
PTHREAD_KEY_DATA_SIZE = 16          # {uintptr_t seq; void *data;}
TCB_DTV = 0x8                       # tcbhead_t.dtv
FRAME_OWNED_BY_CSTACK = 3


class Mem:
    def __init__(self, pid):
        self.f = open(f"/proc/{pid}/mem", "rb", buffering=0)

    def read(self, addr, n):
        self.f.seek(addr)
        return self.f.read(n)

    def u64(self, a): return struct.unpack("<Q", self.read(a, 8))[0]
    def i32(self, a): return struct.unpack("<i", self.read(a, 4))[0]
    def u32(self, a): return struct.unpack("<I", self.read(a, 4))[0]
    def u8(self, a): return self.read(a, 1)[0]


def find_module(pid):
    """Return (path, bias) of the ELF that defines _PyRuntime."""
    maps = [l.split() for l in open(f"/proc/{pid}/maps")]
    files = []
    for m in maps:
        if len(m) >= 6 and m[5].startswith("/") and m[5] not in files:
            files.append(m[5])
    for path in files:
        if not re.search(r"(python|libpython)", os.path.basename(path)):
            continue
        out = subprocess.run(["readelf", "-W", "--dyn-syms", path], capture_output=True, text=True).stdout
        if re.search(r"^\s*\d+:\s+[0-9a-f]*[1-9a-f][0-9a-f]*\s.*\s_PyRuntime$", out, re.M):  # defined, not UND
            start = min(int(m[0].split("-")[0], 16) for m in maps if len(m) >= 6 and m[5] == path)
            ph = subprocess.run(["readelf", "-W", "-l", path], capture_output=True, text=True).stdout
            first_load = int(re.search(r"LOAD\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)", ph).group(1), 16)
            return path, start - (first_load & ~0xfff)
    raise SystemExit("no _PyRuntime")


def sym(path, name, symtab=False):
    out = subprocess.run(["readelf", "-W", "-s" if symtab else "--dyn-syms", path],
                         capture_output=True, text=True).stdout
    m = re.search(r"^\s*\d+:\s+([0-9a-f]+)\s+\S+\s+\w+\s+\w+\s+\w+\s+\w+\s+" + re.escape(name) + r"$", out, re.M)
    return int(m.group(1), 16) if m else None


def read_str(mem, obj, ascii_size):
    """Compact-ASCII / compact-latin1/UTF-8 cached string reader (what BPF would do)."""
    state = mem.u32(obj + 32)
    length = mem.u64(obj + 16)
    kind, compact, ascii_ = (state >> 2) & 7, (state >> 5) & 1, (state >> 6) & 1
    if compact and ascii_:
        return mem.read(obj + ascii_size, length).decode("ascii")
    if compact and kind == 1:  # latin-1 data after PyCompactUnicodeObject (ascii_size + 24)
        return mem.read(obj + ascii_size + 24, length).decode("latin-1")
    return f"<non-ascii kind={kind} compact={compact}>"


# ---- line tables (user-space side) -----------------------------------------
def line_lnotab(tab, firstlineno, addrq):          # 3.8/3.9, addrq in bytes
    line, addr = firstlineno, 0
    for i in range(0, len(tab), 2):
        addr += tab[i]
        if addr > addrq:
            break
        d = tab[i + 1]
        line += d - 256 if d >= 128 else d
    return line


def line_310(tab, firstlineno, addrq):              # 3.10, addrq in bytes
    if addrq < 0:
        return firstlineno
    line, end = firstlineno, 0
    for i in range(0, len(tab), 2):
        start, end = end, end + tab[i]
        ld = tab[i + 1] - 256 if tab[i + 1] >= 128 else tab[i + 1]
        cur = None if ld == -128 else None
        if ld != -128:
            line += ld
        if start <= addrq < end:
            return None if ld == -128 else line
    return None


def line_311(tab, firstlineno, addrq):              # 3.11+ location table, addrq in bytes
    if addrq < 0:
        return firstlineno
    p = 0
    def varint():
        nonlocal p
        b = tab[p]; p += 1; v = b & 63; s = 0
        while b & 64:
            b = tab[p]; p += 1; s += 6; v |= (b & 63) << s
        return v
    def svarint():
        v = varint()
        return -(v >> 1) if v & 1 else v >> 1
    line, addr = firstlineno, 0
    while p < len(tab):
        b = tab[p]; p += 1
        code, length = (b >> 3) & 15, (b & 7) + 1
        if code == 15:
            delta, none = 0, True
        elif code == 14:
            delta = svarint(); varint(); varint(); varint(); none = False
        elif code == 13:
            delta = svarint(); none = False
        elif code >= 10:
            delta = code - 10; p += 2; none = False
        else:
            delta = 0; p += 1; none = False
        line += delta
        end = addr + 2 * length
        if addr <= addrq < end:
            return None if none else line
        addr = end
    return None


def bytes_obj(mem, b):
    n = mem.u64(b + 16)
    return mem.read(b + 32, n)


# ---- tstate lookup ----------------------------------------------------------
def tstate_via_tsd(mem, runtime, o, fsbase):
    key = mem.u32(runtime + o["key"])
    if key < 32:
        return key, mem.u64(fsbase + PTHREAD_SPECIFIC_1STBLOCK + key * PTHREAD_KEY_DATA_SIZE + 8)
    blk = mem.u64(fsbase + PTHREAD_SPECIFIC + (key >> 5) * 8)
    return key, (mem.u64(blk + (key & 31) * 16 + 8) if blk else 0)


def tstate_via_tls(mem, path, bias, fsbase):
    """3.12+: _Py_tss_tstate via the GOT tls_index used by _PyThreadState_GetCurrent."""
    f = sym(path, "_PyThreadState_GetCurrent")
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={f}",
                          f"--stop-address={f + 28}", path], capture_output=True, text=True).stdout
    m = re.search(r"lea\s+0x[0-9a-f]+\(%rip\),%rdi\s+#\s+([0-9a-f]+)", dis)
    if not m:   # non-PIC executable would use %fs:-N directly (local-exec)
        m2 = re.search(r"mov\s+%fs:0x([0-9a-f]+),%rax", dis)
        raise SystemExit("local-exec TLS not handled here: " + dis)
    tls_index = bias + int(m.group(1), 16)
    modid, dtpoff = mem.u64(tls_index), mem.u64(tls_index + 8)
    dtv = mem.u64(fsbase + TCB_DTV)
    block = mem.u64(dtv + 16 * modid)
    return modid, dtpoff, fsbase - block, mem.u64(block + dtpoff)


def tstate_via_list(mem, runtime, o, fsbase, tid):
    interp = mem.u64(runtime + o["interp_head"])
    hits = []
    while interp:
        ts = mem.u64(interp + o["is_tstate_head"])
        while ts:
            if mem.u64(ts + o["ts_thread_id"]) == fsbase:
                hits.append(("thread_id==fsbase", ts))
            if o["ts_native"] is not None and mem.u64(ts + o["ts_native"]) == tid:
                hits.append(("native_thread_id==tid", ts))
            ts = mem.u64(ts + o["ts_next"])
        interp = mem.u64(interp + o["is_next"])
    return hits


# ---- frame walk -------------------------------------------------------------
def walk(mem, o, ver, tstate, code_type):
    out = []
    k = o["kind"]
    if k == "frameobject":
        f = mem.u64(tstate + o["ts_frame"])
    elif k in ("iframe311", "iframe312"):
        f = mem.u64(mem.u64(tstate + o["ts_cframe"]) + o["cf_current"])
    else:
        f = mem.u64(tstate + o["ts_current_frame"])
    for _ in range(128):
        if not f:
            break
        code = mem.u64(f + o["fr_code"])
        back = mem.u64(f + o["fr_back"])
        if k == "frameobject":
            lasti = mem.i32(f + o["fr_lasti"])
            addrq = lasti * o["lasti_units"]
        else:
            owner = mem.u8(f + o["fr_owner"])
            if os.environ.get("WALKER_DEBUG"):
                tp = mem.u64(code + 8)
                tpname = mem.read(mem.u64(tp + 24), 16).split(b"\0")[0]
                extra = f" is_entry={mem.u8(f + o['fr_is_entry'])}" if "fr_is_entry" in o else ""
                print(f"        raw frame {f:#x} owner={owner}{extra} code={code:#x} type={tpname!r}")
            if owner == FRAME_OWNED_BY_CSTACK and k != "iframe311":
                f = back
                continue
            if mem.u64(code + 8) != code_type:          # ob_type check (3.13: None)
                out.append(("<not a code object>",))
                f = back
                continue
            instr = mem.u64(f + o["fr_instr"])
            lasti = (instr - (code + o["co_code_adaptive"])) // 2  # code units
            addrq = lasti * 2
        fn = read_str(mem, mem.u64(code + o["co_filename"]), o["ascii_size"])
        name = read_str(mem, mem.u64(code + o["co_name"]), o["ascii_size"])
        qual = read_str(mem, mem.u64(code + o["co_qualname"]), o["ascii_size"]) if o["co_qualname"] else None
        first = mem.i32(code + o["co_firstlineno"])
        tab = bytes_obj(mem, mem.u64(code + o["co_lines"]))
        if ver <= (3, 9):
            line = line_lnotab(tab, first, addrq)
        elif ver == (3, 10):
            line = line_310(tab, first, addrq)
        else:
            line = line_311(tab, first, addrq)
        out.append((fn, name, qual, first, lasti, line))
        f = back
    return out[::-1]


def main():
    pid = int(sys.argv[1])
    reports = json.loads(open(sys.argv[2]).read())
    exe = os.readlink(f"/proc/{pid}/exe")
    path, bias = find_module(pid)
    mem = Mem(pid)
    runtime = bias + sym(path, "_PyRuntime")
    ver_hex = None
    # version from Py_Version (3.11+) or the path name
    vm = re.search(r"(?:python|libpython)3\.(\d+)", os.path.basename(path)) or re.search(r"python3\.(\d+)", exe)
    ver = (3, int(vm.group(1)))
    o = OFFSETS[ver]
    code_type = bias + sym(path, "PyCode_Type")
    print(f"pid {pid} {exe} module {path} bias {bias:#x} _PyRuntime {runtime:#x} version {ver}")
    if ver >= (3, 13):
        cookie = mem.read(runtime, 8)
        dbg = struct.unpack("<8sQQ" + "Q" * 70, mem.read(runtime, 8 + 8 * 72))
        print(f"  _Py_DebugOffsets cookie={cookie!r} version={dbg[1]:#x} free_threaded={dbg[2]}")
    ok = True
    for r in reports:
        fsbase, tid = r["ident"], r["native_id"]
        key, ts_b = tstate_via_tsd(mem, runtime, o, fsbase)
        hits = tstate_via_list(mem, runtime, o, fsbase, tid)
        line = f"  [{r['name']:9}] fsbase={fsbase:#x} tid={tid} autoTSSkey={key} tsd->tstate={ts_b:#x} list={[(h[0], hex(h[1])) for h in hits]}"
        if ver >= (3, 12):
            modid, dtpoff, tpoff, ts_a = tstate_via_tls(mem, path, bias, fsbase)
            line += f" _Py_tss_tstate(modid={modid},dtpoff={dtpoff},tp-block={tpoff:#x})={ts_a:#x}"
        print(line)
        if not ts_b or any(h[1] != ts_b for h in hits) or not hits:
            ok = False
            print("   !! tstate mismatch")
        stack = walk(mem, o, ver, ts_b, code_type)
        exp = [tuple(x) for x in r["stack"]]
        got = [(s[0], s[1], s[5]) for s in stack if len(s) > 1]
        for s in stack:
            print("     ", s)
        # the innermost frame of a spinning thread moves; compare all but its line
        if r["name"] == "spinner":
            exp = exp[:-1]; gotc = got[:-1]
            # spinner's top frame is spin_inner; its line moved since report()
            match = gotc == exp and got[-1][1] == "spin_inner"
        else:
            # report() was called one line above the parking call in these frames
            match = [(a, b) for a, b, _ in got] == [(a, b) for a, b, _ in exp] and \
                    all(g[2] in (e[2], e[2] + 1, e[2] + 2) for g, e in zip(got, exp))
            match = match and all(g[2] == e[2] for g, e in zip(got[:-1], exp[:-1]))
        print("      expected:", exp)
        print("      MATCH" if match else "      MISMATCH")
        ok = ok and match
    print("RESULT", "OK" if ok else "FAIL")


if __name__ == "__main__":
    main()
