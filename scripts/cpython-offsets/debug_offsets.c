/*
 * debug_offsets.c -- 3.13: print the layout of _Py_DebugOffsets (offset of
 * each field inside the struct == inside _PyRuntime, since it is the first
 * member) and, if given PID and ADDR(_PyRuntime), the live values read from
 * the process with process_vm_readv.
 *
 *   I=/root/.pyenv/versions/3.13.0/include/python3.13
 *   cc -DPy_BUILD_CORE -I$I -I$I/internal debug_offsets.c -o debug_offsets-3.13
 *   ./debug_offsets-3.13 [PID 0xADDR]
 */
#define _GNU_SOURCE
#define Py_BUILD_CORE 1
#include <Python.h>
#include "internal/pycore_runtime.h"
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>

static _Py_DebugOffsets live;
static int have_live;

#define F(path) do { \
    size_t off = offsetof(_Py_DebugOffsets, path); \
    if (have_live) printf("%-44s +%-4zu (0x%03zx)  value %llu (0x%llx)\n", #path, off, off, \
        (unsigned long long)live.path, (unsigned long long)live.path); \
    else printf("%-44s +%-4zu (0x%03zx)\n", #path, off, off); } while (0)

int main(int argc, char **argv)
{
    if (argc == 3) {
        pid_t pid = atoi(argv[1]);
        unsigned long addr = strtoul(argv[2], NULL, 0);
        struct iovec l = { &live, sizeof live }, r = { (void *)addr, sizeof live };
        if (process_vm_readv(pid, &l, 1, &r, 1, 0) != (ssize_t)sizeof live) { perror("process_vm_readv"); return 1; }
        have_live = 1;
        printf("cookie \"%.8s\"\n", live.cookie);
    }
    printf("sizeof(_Py_DebugOffsets) = %zu\n", sizeof(_Py_DebugOffsets));
    F(cookie[0]); F(version); F(free_threaded);
    F(runtime_state.size); F(runtime_state.finalizing); F(runtime_state.interpreters_head);
    F(interpreter_state.size); F(interpreter_state.id); F(interpreter_state.next);
    F(interpreter_state.threads_head); F(interpreter_state.gc); F(interpreter_state.imports_modules);
    F(interpreter_state.sysdict); F(interpreter_state.builtins); F(interpreter_state.ceval_gil);
    F(interpreter_state.gil_runtime_state); F(interpreter_state.gil_runtime_state_enabled);
    F(interpreter_state.gil_runtime_state_locked); F(interpreter_state.gil_runtime_state_holder);
    F(thread_state.size); F(thread_state.prev); F(thread_state.next); F(thread_state.interp);
    F(thread_state.current_frame); F(thread_state.thread_id); F(thread_state.native_thread_id);
    F(thread_state.datastack_chunk); F(thread_state.status);
    F(interpreter_frame.size); F(interpreter_frame.previous); F(interpreter_frame.executable);
    F(interpreter_frame.instr_ptr); F(interpreter_frame.localsplus); F(interpreter_frame.owner);
    F(code_object.size); F(code_object.filename); F(code_object.name); F(code_object.qualname);
    F(code_object.linetable); F(code_object.firstlineno); F(code_object.argcount);
    F(code_object.localsplusnames); F(code_object.localspluskinds); F(code_object.co_code_adaptive);
    F(pyobject.size); F(pyobject.ob_type);
    F(type_object.size); F(type_object.tp_name); F(type_object.tp_repr); F(type_object.tp_flags);
    F(tuple_object.size); F(tuple_object.ob_item); F(tuple_object.ob_size);
    F(list_object.size); F(list_object.ob_item); F(list_object.ob_size);
    F(dict_object.size); F(dict_object.ma_keys); F(dict_object.ma_values);
    F(float_object.size); F(float_object.ob_fval);
    F(long_object.size); F(long_object.lv_tag); F(long_object.ob_digit);
    F(bytes_object.size); F(bytes_object.ob_size); F(bytes_object.ob_sval);
    F(unicode_object.size); F(unicode_object.state); F(unicode_object.length);
    F(unicode_object.asciiobject_size);
    F(gc.size); F(gc.collecting);
    return 0;
}
