/*
 * offsets.c -- print CPython internal struct offsets relevant to an in-BPF
 * Python stack walker, computed with offsetof() against the *installed*
 * headers of one interpreter.
 *
 * Build (one binary per interpreter; see build_offsets.sh):
 *   cc -DPy_BUILD_CORE -I$PREFIX/include/python3.X -I$PREFIX/include/python3.X/internal \
 *      offsets.c -o offsets-3.X
 * Nothing is linked against libpython: only the compile-time layout is used.
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>

#if PY_VERSION_HEX >= 0x03090000
#  include "internal/pycore_runtime.h"
#  include "internal/pycore_interp.h"
#else
#  include "internal/pycore_pystate.h"   /* 3.8: _PyRuntimeState + PyInterpreterState */
#endif
#if PY_VERSION_HEX >= 0x030B0000
#  include "internal/pycore_frame.h"
#  include "internal/pycore_code.h"
#endif
#if PY_VERSION_HEX < 0x030B0000
#  include "frameobject.h"
#endif

#define P(label, expr) printf("%-48s %6zu  0x%zx\n", label, (size_t)(expr), (size_t)(expr))

int main(void)
{
    printf("# PY_VERSION %s  (PY_VERSION_HEX 0x%08x)\n", PY_VERSION, PY_VERSION_HEX);
#ifdef Py_TRACE_REFS
    printf("# WARNING: Py_TRACE_REFS build\n");
#endif
#ifdef Py_GIL_DISABLED
    printf("# WARNING: Py_GIL_DISABLED (free-threaded) build\n");
#endif

    printf("\n## _PyRuntimeState\n");
    P("sizeof(_PyRuntimeState)", sizeof(_PyRuntimeState));
    P("interpreters.head", offsetof(_PyRuntimeState, interpreters.head));
    P("interpreters.main", offsetof(_PyRuntimeState, interpreters.main));
#if PY_VERSION_HEX >= 0x030C0000
    P("autoTSSkey (Py_tss_t)", offsetof(_PyRuntimeState, autoTSSkey));
    P("autoTSSkey._key (pthread_key_t)", offsetof(_PyRuntimeState, autoTSSkey) + offsetof(Py_tss_t, _key));
#else
    P("gilstate.tstate_current (GIL holder)", offsetof(_PyRuntimeState, gilstate.tstate_current));
    P("gilstate.autoTSSkey (Py_tss_t)", offsetof(_PyRuntimeState, gilstate.autoTSSkey));
    P("gilstate.autoTSSkey._key (pthread_key_t)", offsetof(_PyRuntimeState, gilstate.autoTSSkey) + offsetof(Py_tss_t, _key));
#endif
    P("sizeof(Py_tss_t)", sizeof(Py_tss_t));
    P("Py_tss_t._is_initialized", offsetof(Py_tss_t, _is_initialized));
    P("Py_tss_t._key", offsetof(Py_tss_t, _key));
#if PY_VERSION_HEX >= 0x030D0000
    P("debug_offsets (_Py_DebugOffsets)", offsetof(_PyRuntimeState, debug_offsets));
    P("sizeof(_Py_DebugOffsets)", sizeof(_Py_DebugOffsets));
#endif

    printf("\n## PyInterpreterState\n");
    P("next", offsetof(PyInterpreterState, next));
    P("id", offsetof(PyInterpreterState, id));
#if PY_VERSION_HEX >= 0x030B0000
    P("threads.head", offsetof(PyInterpreterState, threads.head));
#else
    P("tstate_head", offsetof(PyInterpreterState, tstate_head));
#endif

    printf("\n## PyThreadState\n");
    P("sizeof(PyThreadState)", sizeof(PyThreadState));
    P("prev", offsetof(PyThreadState, prev));
    P("next", offsetof(PyThreadState, next));
    P("interp", offsetof(PyThreadState, interp));
#if PY_VERSION_HEX >= 0x030D0000
    P("current_frame", offsetof(PyThreadState, current_frame));
#elif PY_VERSION_HEX >= 0x030B0000
    P("cframe", offsetof(PyThreadState, cframe));
    P("root_cframe", offsetof(PyThreadState, root_cframe));
    P("_PyCFrame.current_frame", offsetof(_PyCFrame, current_frame));
    P("_PyCFrame.previous", offsetof(_PyCFrame, previous));
#else
    P("frame", offsetof(PyThreadState, frame));
#endif
#if PY_VERSION_HEX >= 0x030A0000 && PY_VERSION_HEX < 0x030B0000
    P("cframe (3.10; no frame ptr inside)", offsetof(PyThreadState, cframe));
#endif
    P("thread_id (pthread_self())", offsetof(PyThreadState, thread_id));
#if PY_VERSION_HEX >= 0x030B0000
    P("native_thread_id (gettid())", offsetof(PyThreadState, native_thread_id));
#endif

#if PY_VERSION_HEX >= 0x030B0000
    printf("\n## _PyInterpreterFrame\n");
    P("sizeof(_PyInterpreterFrame)", sizeof(_PyInterpreterFrame));
#  if PY_VERSION_HEX >= 0x030D0000
    P("f_executable", offsetof(_PyInterpreterFrame, f_executable));
    P("instr_ptr", offsetof(_PyInterpreterFrame, instr_ptr));
#  else
    P("f_code", offsetof(_PyInterpreterFrame, f_code));
    P("prev_instr", offsetof(_PyInterpreterFrame, prev_instr));
#  endif
    P("previous", offsetof(_PyInterpreterFrame, previous));
    P("frame_obj", offsetof(_PyInterpreterFrame, frame_obj));
    P("stacktop", offsetof(_PyInterpreterFrame, stacktop));
#  if PY_VERSION_HEX < 0x030C0000
    P("is_entry (bool)", offsetof(_PyInterpreterFrame, is_entry));
#  else
    P("return_offset (u16)", offsetof(_PyInterpreterFrame, return_offset));
#  endif
    P("owner (char)", offsetof(_PyInterpreterFrame, owner));
    P("localsplus", offsetof(_PyInterpreterFrame, localsplus));
#else
    printf("\n## PyFrameObject\n");
    P("sizeof(PyFrameObject)", sizeof(PyFrameObject));
    P("f_back", offsetof(PyFrameObject, f_back));
    P("f_code", offsetof(PyFrameObject, f_code));
    P("f_lasti (int)", offsetof(PyFrameObject, f_lasti));
    P("f_lineno (int)", offsetof(PyFrameObject, f_lineno));
#endif

    printf("\n## PyCodeObject\n");
    P("sizeof(PyCodeObject)", sizeof(PyCodeObject));
    P("co_flags (int)", offsetof(PyCodeObject, co_flags));
    P("co_argcount (int)", offsetof(PyCodeObject, co_argcount));
    P("co_firstlineno (int)", offsetof(PyCodeObject, co_firstlineno));
    P("co_filename", offsetof(PyCodeObject, co_filename));
    P("co_name", offsetof(PyCodeObject, co_name));
#if PY_VERSION_HEX >= 0x030B0000
    P("co_qualname", offsetof(PyCodeObject, co_qualname));
    P("co_linetable (bytes)", offsetof(PyCodeObject, co_linetable));
    P("_co_firsttraceable (int)", offsetof(PyCodeObject, _co_firsttraceable));
    P("co_code_adaptive (bytecode start)", offsetof(PyCodeObject, co_code_adaptive));
#elif PY_VERSION_HEX >= 0x030A0000
    P("co_code (bytes)", offsetof(PyCodeObject, co_code));
    P("co_linetable (bytes)", offsetof(PyCodeObject, co_linetable));
#else
    P("co_code (bytes)", offsetof(PyCodeObject, co_code));
    P("co_lnotab (bytes)", offsetof(PyCodeObject, co_lnotab));
#endif

    printf("\n## PyObject / PyVarObject / PyBytesObject / PyTypeObject\n");
#ifndef Py_GIL_DISABLED
    P("ob_refcnt", offsetof(PyObject, ob_refcnt));
#endif
    P("ob_type", offsetof(PyObject, ob_type));
    P("PyVarObject.ob_size", offsetof(PyVarObject, ob_size));
    P("PyBytesObject.ob_sval", offsetof(PyBytesObject, ob_sval));
    P("PyTypeObject.tp_name", offsetof(PyTypeObject, tp_name));

    printf("\n## Unicode\n");
    P("sizeof(PyASCIIObject) (=ASCII data start)", sizeof(PyASCIIObject));
    P("sizeof(PyCompactUnicodeObject) (=non-ASCII compact data)", sizeof(PyCompactUnicodeObject));
    P("PyASCIIObject.length", offsetof(PyASCIIObject, length));
    P("PyASCIIObject.hash", offsetof(PyASCIIObject, hash));
    P("PyASCIIObject.state (bitfield word)", offsetof(PyASCIIObject, hash) + sizeof(Py_hash_t));
    P("PyCompactUnicodeObject.utf8_length", offsetof(PyCompactUnicodeObject, utf8_length));
    P("PyCompactUnicodeObject.utf8", offsetof(PyCompactUnicodeObject, utf8));
    {
        /* Determine the bit positions of the state bitfield empirically. */
        PyASCIIObject o;
        unsigned int w;
        memset(&o, 0, sizeof o);
        o.state.kind = 7;
        memcpy(&w, &o.state, 4); printf("%-48s 0x%08x\n", "state mask: kind", w);
        memset(&o, 0, sizeof o);
        o.state.compact = 1;
        memcpy(&w, &o.state, 4); printf("%-48s 0x%08x\n", "state mask: compact", w);
        memset(&o, 0, sizeof o);
        o.state.ascii = 1;
        memcpy(&w, &o.state, 4); printf("%-48s 0x%08x\n", "state mask: ascii", w);
        memset(&o, 0, sizeof o);
        o.state.interned = 3;
        memcpy(&w, &o.state, 4); printf("%-48s 0x%08x\n", "state mask: interned", w);
#if PY_VERSION_HEX < 0x030C0000
        memset(&o, 0, sizeof o);
        o.state.ready = 1;
        memcpy(&w, &o.state, 4); printf("%-48s 0x%08x\n", "state mask: ready", w);
#endif
    }
    return 0;
}
