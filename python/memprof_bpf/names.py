"""big_objs(): which notebook names hold the memory, and what `del` frees.

    from memprof_bpf import big_objs
    big_objs()          # or: %memprof names

The roots are the notebook's global names (the kernel's user_ns), each entry
of IPython's output cache as its own root `Out[N]`, and `_`, `__`, `___`.
From every root the reference graph is walked (gc.get_referents, plus what
the garbage collector does not see: an ndarray's .base chain and the
elements of object arrays), bounded by a time budget and a depth limit.

Every object reached gets the set of roots that reach it. An object whose
reference count is higher than the references found from walked objects and
name bindings is also held from outside the walked graph: it gets the
pseudo-root OTHER, and so does everything it reaches. Then

    bytes            = the sizes of everything a root reaches
    exclusive_bytes  = the sizes of what only this root reaches (and nothing
                       outside): what `del NAME; gc.collect()` frees

Modules, classes, functions, methods, code objects, frames and the namespace
dicts themselves are boundaries: neither counted nor walked.

Nothing is kept after the call: objects are held in one dict (id -> node)
during it and the nodes are dropped before returning. Standard library only;
numpy is used only if the notebook imported it already (sys.modules).

The cells. With the memprof-bpf agent, a row's cell and line are those that
allocated its largest tracked buffer. Otherwise the cell comes from IPython's
input history (_ih): `Out[N]` is "In [N]", a name the last cell whose code
leaves it bound at module level (ast: assignments, for, with, import, def,
class, walrus; a `del` in the same cell undoes it; a cell that does not
parse is read line by line), `_`, `__`, `___` none.

The graph. The rows and hints have one home, _summarize() and _hint(), fed
by either of two builders of the same labelled graph of _Nodes: _Walk, in
the process, or _Graph, from JSON written outside it by the C walker
(user/names/, reading /proc/PID/mem), one object per process:

    {"pid", "python", "total_live_bytes", "estimated", "elapsed",
     "max_depth", "stopped": null|"time"|"exited", "cut_depth",
     "unreadable", "history": _ih or null,
     "nodes": [{"type", "size", "state": "leaf"|"done"|"partial"|"cut",
                "view", "kids": [node indices], "other", "cell", "where"}],
     "roots": [{"label", "node", "row", "summary"}]}

summarize_graph(graph) gives the BigObjects of such a graph; graph_of(ns)
exports the in-process walk in that schema (the tests check that both
paths give the same rows). `python3 -m memprof_bpf.names --graph FILE|-
[--format text|json]` is the C agent's entry point (main()).
"""

import argparse
import ast
import collections
import contextlib
import gc
import html
import itertools
import json
import os
import re
import sys
import time
import types

from .table import human, shorten

#: The pseudo-root for references from outside the walked graph.
OTHER = "(other references)"
#: The note of a result computed without the memprof-bpf agent...
NO_AGENT = "sizes are estimates; cells unknown (no memprof-bpf agent)"
#: ... when the input history gave the cells.
NO_AGENT_HISTORY = ("sizes are estimates; cells are where each name was "
                    "last bound (no memprof-bpf agent)")
#: ... of a graph read from outside the process (summarize_graph).
NO_AGENT_OUTSIDE = ("sizes are from object headers; no memprof-bpf agent "
                    "traces this process")
#: The note of a graph whose process exited while it was read.
EXITED = "the process exited during the read: figures are partial"

DEFAULT_BUDGET = 1.5    # seconds for a call
DEFAULT_DEPTH = 100     # references from a root
DEFAULT_MIN_BYTES = 1024
DEFAULT_HINTS = 5       # rows that get a hint
HINT_SHARED_MIN = 64 << 10  # shared bytes below this need no explaining
LARGE = 256 << 10       # from here an object is its own malloc block
CHUNK = 1 << 16         # elements of a big container looked at at once
FAST_MIN = 512          # containers at least this long go by chunks
SEARCH_LIMIT = 200000   # nodes a hint's relation search may visit
# A block may exceed its buffer by malloc's header and page rounding; much
# more (two arrays' mappings merged into one) says nothing about it.
BLOCK_SLACK = 64 << 10
POST_COST = 0.8e-6      # seconds per node after the walk (measured ~0.5)
_OUTPUT_NAMES = ("_", "__", "___")
_HIDDEN = "user_ns_hidden[%r]"  # an output IPython left behind there
# IPython's public-looking internals: walked (they may hold things) but
# never rows.
_IPYTHON_NAMES = frozenset(("In", "Out", "exit", "quit", "get_ipython"))

# What a type is to the walk.
_SKIP = 0       # singletons and small ints: shared by everyone, never freed
_BOUNDARY = 1   # not counted, not walked
_ATOMIC = 2     # no references to other objects (str, bytes, float, ...)
_ARRAY = 3      # numpy.ndarray: .base and object elements, not GC-visible
_CONTAINER = 4  # a GC container: gc.get_referents

_HAVE_GC = 1 << 14  # Py_TPFLAGS_HAVE_GC
_BOUNDARY_TYPES = (
    type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
    types.MethodType, types.MethodWrapperType, types.WrapperDescriptorType,
    types.MethodDescriptorType, types.ClassMethodDescriptorType,
    types.GetSetDescriptorType, types.MemberDescriptorType, types.CodeType,
    types.FrameType, types.TracebackType, staticmethod, classmethod,
    property)
_SKIP_TYPES = (type(None), bool, type(NotImplemented), type(Ellipsis))
_FAST_TYPES = (list, tuple, dict, set, frozenset)

# Node states, and a flag: an ndarray whose kids[0] is its .base.
_NEW, _LEAF, _DONE, _CUT, _PARTIAL = range(5)
_STATE = 7
_VIEW = 8
# How a node's buffer address is found, for the agent.
_BUF_ID, _BUF_NDARRAY, _BUF_LIST, _BUF_BYTEARRAY, _BUF_ARRAY = range(5)

_EMPTY = frozenset()


class _Node:
    """One object reached: the only place the walk holds it (obj).
    Containers held by nothing but their parent are folded into it (their
    fate is its fate) instead of getting a node of their own."""

    __slots__ = ("obj", "size", "src", "indeg", "state", "kids")

    def __init__(self, obj, size, state):
        self.obj = obj
        self.size = size      # its bytes and those of what is folded in
        self.src = _EMPTY     # the roots (labels) that reach it
        self.indeg = 0        # references found: walked parents, bindings
        self.state = state    # _NEW, _LEAF, ... | _VIEW
        self.kids = ()        # the nodes it references


def _rc(node):
    """sys.getrefcount of a node's object; calibrated with a probe node."""
    return sys.getrefcount(node.obj)


def _loop_base():
    """getrefcount of an element held only by the list iterated, seen from
    a for loop over that list (the list, the loop variable, the argument)."""
    for c in [object()]:
        return sys.getrefcount(c)


def _map_base():
    """max(map(getrefcount, chunk)) for an element held only by chunk."""
    chunk = [object()]
    return max(map(sys.getrefcount, chunk))


_GC_HEAD = sys.getsizeof([]) - [].__sizeof__()


def _sizer(t):
    """None when t's __sizeof__ is C code (the object's own memory), else
    the nearest C __sizeof__ up its MRO: a __sizeof__ written in Python
    may count what the object refers to (pandas: memory_usage(deep=True)),
    and runs code with side effects (it fills DataFrame._item_cache)."""
    found = None
    for klass in t.__mro__:
        f = klass.__dict__.get("__sizeof__")
        if f is None:
            continue
        if isinstance(f, (types.FunctionType, staticmethod, classmethod,
                          property)) or not callable(f):
            found = found or klass
            continue
        return None if found is None else f
    return object.__sizeof__


def _sizeof(obj, sizers):
    """sys.getsizeof, unless a Python __sizeof__ would be called (sizers:
    type -> _sizer(type), a cache for one call)."""
    t = type(obj)
    try:
        f = sizers[t]
    except KeyError:
        f = sizers[t] = _sizer(t)
    try:
        if f is None:
            return sys.getsizeof(obj)
        return f(obj) + (_GC_HEAD if t.__flags__ & _HAVE_GC else 0)
    except Exception:  # a broken __sizeof__
        return t.__basicsize__


# ---- records -----------------------------------------------------------------

class Record:
    """One root: a name, an `Out[N]`, or `_`/`__`/`___`."""

    __slots__ = ("name", "bytes", "exclusive_bytes", "shared_with",
                 "shared_bytes", "cell", "where", "kind", "summary", "hint",
                 "complete")

    def __init__(self, name, kind, summary=""):
        self.name = name
        self.kind = kind
        self.summary = summary
        self.bytes = 0              # everything the root reaches
        self.exclusive_bytes = 0    # what `del name` + gc.collect() frees
        self.shared_with = []       # names (and OTHER) sharing a good part
        self.shared_bytes = {}      # every sharer -> bytes shared with it
        self.cell = None            # "In [N]" of the largest tracked buffer,
        #                             else of the last cell binding the name
        self.where = None           # "file.py:12 f" of that buffer
        self.hint = ""
        self.complete = True        # False: the figures are lower bounds

    def _asdict(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self):
        return ("Record(name=%r, bytes=%d, exclusive_bytes=%d, shared_with=%r"
                ", cell=%r)" % (self.name, self.bytes, self.exclusive_bytes,
                                self.shared_with, self.cell))


class BigObjects(list):
    """big_objs()'s result: a list of Record, largest `del` first, shown as
    a table (text in a terminal, HTML in Jupyter)."""

    def __init__(self, records=(), notes=(), complete=True, estimated=True,
                 total_bytes=0, live_bytes=None, elapsed=0.0, nodes=0,
                 names=0, title="big_objs"):
        list.__init__(self, records)
        self.title = title  # "memprof-bpf names" for a graph from outside
        self.pid = None     # the process (summarize_graph)
        self.python = None  # its Python version (summarize_graph)
        self.notes = list(notes)
        self.complete = complete      # False: some figures are lower bounds
        self.estimated = estimated    # True: no agent answered
        self.total_bytes = total_bytes
        self.live_bytes = live_bytes  # the agent's count for the process
        self.elapsed = elapsed
        self.nodes = nodes
        self.names = names

    def header(self):
        line = "%s: %d names reach %s" % (self.title, self.names,
                                          human(self.total_bytes))
        if not self.complete:
            line = line.replace(" reach ", " reach at least ")
        if self.live_bytes is not None:
            line += " of %s live in the process" % human(self.live_bytes)
        return line + " (%d objects, %.2f s)" % (self.nodes, self.elapsed)

    def _cells(self, r):
        low = "" if r.complete else "\u2265"
        shared = ", ".join(r.shared_with) if r.shared_with else "-"
        alloc = " ".join(x for x in (r.cell, r.where) if x) or "-"
        kind = r.kind + (" " + r.summary if r.summary else "")
        return [r.name, shorten(kind, 32), low + human(r.bytes),
                low + human(r.exclusive_bytes), shorten(shared, 40),
                shorten(alloc, 40)]

    HEADERS = ["name", "type", "reaches", "del frees", "shared with",
               "allocated in"]
    _RIGHT = {2, 3}

    def __str__(self):
        lines = [self.header()]
        lines += ["note: " + n for n in self.notes]
        if not self:
            lines.append("no name holds more than the minimum")
            return "\n".join(lines)
        body = [self._cells(r) for r in self]
        table = [self.HEADERS] + body
        widths = [max(len(row[i]) for row in table)
                  for i in range(len(self.HEADERS))]
        for row in table:
            lines.append("  ".join(
                v.rjust(w) if i in self._RIGHT else v.ljust(w)
                for i, (v, w) in enumerate(zip(row, widths))).rstrip())
        hints = [r.hint for r in self if r.hint]
        if hints:
            lines.append("")
            lines += ["hint: " + h for h in hints]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self):
        esc = html.escape
        out = ['<div class="memprof-names">', "<p>%s</p>" % esc(self.header())]
        for n in self.notes:
            out.append("<p><b>note:</b> %s</p>" % esc(n))
        out.append("<table><thead><tr>")
        for i, h in enumerate(self.HEADERS + ["hint"]):
            align = "right" if i in self._RIGHT else "left"
            out.append('<th style="text-align:%s">%s</th>' % (align, esc(h)))
        out.append("</tr></thead><tbody>")
        for r in self:
            out.append("<tr>")
            for i, v in enumerate(self._cells(r) + [r.hint]):
                align = "right" if i in self._RIGHT else "left"
                out.append('<td style="text-align:%s">%s</td>'
                           % (align, esc(v)))
            out.append("</tr>")
        out.append("</tbody></table></div>")
        return "".join(out)


# ---- the roots ---------------------------------------------------------------

def _is_output_number(name):
    return len(name) > 1 and name[0] == "_" and name[1:].isdigit()


def _row_name(name):
    """Is this global name a row of the table?"""
    if name in _OUTPUT_NAMES:
        return True
    return not name.startswith("_") and name not in _IPYTHON_NAMES


def _bindings(ns, shell):
    """[(label, obj, references, is_row)] for the roots. A label's
    references are the bindings that hold obj for it: a name counts its
    ns entry; Out[N] its entry in Out, its `_N` alias, IPython's copy of
    that in user_ns_hidden and the last execution result; `_` (`__`, `___`)
    its ns entry, the displayhook's and user_ns_hidden's. An output left
    in user_ns_hidden alone is a root of its own."""
    out = ns.get("Out")
    if not isinstance(out, dict):
        out = None
    roots = {}  # label -> [obj, refs, is_row]
    for name, value in list(ns.items()):
        if not isinstance(name, str):
            continue
        if out is not None and _is_output_number(name):
            n = int(name[1:])
            if n in out and out[n] is value:
                continue  # counted with Out[N] below
        if out is not None and value is out:
            continue  # the output cache as a whole (Out, _oh)
        roots[name] = [value, 1, _row_name(name)]
    if out is not None:
        for n, value in list(out.items()):
            label = "Out[%s]" % (n,)
            refs = 1
            alias = ns.get("_%s" % (n,), roots)
            if alias is value:
                refs += 1
            roots[label] = [value, refs, True]
    if shell is not None:
        hook = getattr(shell, "displayhook", None)
        for name in _OUTPUT_NAMES:
            entry = roots.get(name)
            if entry is not None and getattr(hook, name, None) is entry[0]:
                entry[1] += 1
        # shell.push(..., interactive=False) also stores _, __, ___ and _N
        # in user_ns_hidden (and %reset out leaves them there before
        # ipython/ipython#14133): part of the output cache.
        hidden = getattr(shell, "user_ns_hidden", None)
        if isinstance(hidden, dict) and hidden is not ns:
            for name, value in list(hidden.items()):
                if not isinstance(name, str):
                    continue
                label = None
                if name in _OUTPUT_NAMES:
                    label = name
                elif out is not None and _is_output_number(name):
                    label = "Out[%d]" % int(name[1:])
                if label is None:
                    continue
                entry = roots.get(label)
                if entry is not None and entry[0] is value:
                    entry[1] += 1
                elif isinstance(value, str) and value == "":
                    continue  # what %reset out puts back
                else:  # left behind: a row of its own
                    roots[_HIDDEN % name] = [value, 1, True]
        last = getattr(getattr(shell, "last_execution_result", None),
                       "result", None)
        if last is not None and out is not None:
            for n in sorted(out, key=lambda k: -k if isinstance(k, int)
                            else 0):
                if out[n] is last:
                    roots["Out[%s]" % (n,)][1] += 1
                    break
    return [(label, v[0], v[1], v[2]) for label, v in roots.items()]


def _boundary_ids(ns, shell):
    ids = {id(ns), id(sys.modules), id(__builtins__)}
    out = ns.get("Out")
    if isinstance(out, dict):
        ids.add(id(out))
    for m in list(sys.modules.values()):
        try:
            ids.add(id(vars(m)))
        except TypeError:
            pass
    if shell is not None:
        ids.add(id(shell))
        for attr in ("user_ns", "user_global_ns", "user_ns_hidden",
                     "displayhook", "history_manager"):
            v = getattr(shell, attr, None)
            if v is not None:
                ids.add(id(v))
    return ids


# ---- the walk ----------------------------------------------------------------

class _Labels:
    """What both graph builders share: interned label sets (so equal sets
    are one object, cheap to compare and to key by_src with), and the
    OTHER marking. Subclasses set nodes, queue, entries, summaries,
    stopped, cut_depth and max_depth: what _summarize reads."""

    def labels(self, s):
        return self.sets.setdefault(s, s)

    def union(self, a, b):
        key = (a, b)
        u = self.unions.get(key)
        if u is None:
            u = self.unions[key] = self.labels(a | b)
        return u

    def mark_other(self, seeds):
        """Give OTHER to the seeds (held from outside the walked graph)
        and to everything they reach."""
        other = self.labels(frozenset((OTHER,)))
        q = collections.deque()
        for n in seeds:
            if OTHER not in n.src:
                n.src = self.union(n.src, other)
                q.append(n)
        while q:
            n = q.popleft()
            for k in n.kids:
                if OTHER not in k.src:
                    k.src = self.union(k.src, other)
                    q.append(k)


class _Walk(_Labels):
    def __init__(self, budget, max_depth, boundary_ids):
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + budget
        self.max_depth = max_depth
        self.bids = boundary_ids
        self.nodes = {}    # id -> _Node: the one place objects are held
        self.bufs = {}     # node -> [estimated buffer bytes, _BUF_*]
        self.entries = {}  # node -> the agent's block for its buffer
        # node -> how much deeper than its kids' depth each kid is (when
        # folded containers lie between them)
        self.kid_depths = {}
        self.kinds = {}    # type -> kind, for this call
        self.sizers = {}   # type -> how to size it, for this call
        self.sets = {}     # interned label sets
        self.unions = {}   # (set, set) -> union
        self.queue = collections.deque()
        self.stopped = None  # "time" when the budget ran out
        self.cut_depth = False
        self.summaries = {}  # row label -> (type name, summary)
        self.seeds = []      # nodes held from outside (external)
        np = sys.modules.get("numpy")
        self.ndarray = getattr(np, "ndarray", None)
        # getrefcount of an element held by nothing but the list we iterate
        self.base_loop = _loop_base()
        self.base_map = _map_base()

    # -- types and nodes

    def classify(self, t):
        if issubclass(t, _SKIP_TYPES):
            k = _SKIP
        elif issubclass(t, _BOUNDARY_TYPES):
            k = _BOUNDARY
        elif self.ndarray is not None and issubclass(t, self.ndarray):
            k = _ARRAY
        elif not t.__flags__ & _HAVE_GC:
            k = _ATOMIC
        else:
            k = _CONTAINER
        self.kinds[t] = k
        return k

    def register(self, obj, i, k):
        size = _sizeof(obj, self.sizers)
        state = _NEW
        buf = None
        if k == _ARRAY:
            try:
                base = obj.base
                if obj.flags.owndata:
                    buf = [obj.nbytes, _BUF_NDARRAY]
                objects = obj.dtype.hasobject
            except Exception:
                base, objects = None, False
            if base is not None:
                state |= _VIEW
            elif not objects:
                state = _LEAF
        elif k == _ATOMIC:
            state = _LEAF
            if size >= LARGE:
                t = type(obj)
                if isinstance(obj, (bytes, str, int)):
                    buf = [size, _BUF_ID]
                elif isinstance(obj, bytearray):
                    buf = [size - t.__basicsize__, _BUF_BYTEARRAY]
                elif t.__name__ == "array" and t.__module__ == "array":
                    buf = [size - t.__basicsize__, _BUF_ARRAY]
        elif size >= LARGE:
            if isinstance(obj, list):
                buf = [list.__sizeof__(obj) - list.__basicsize__, _BUF_LIST]
            elif isinstance(obj, tuple):
                buf = [size, _BUF_ID]
        n = self.nodes[i] = _Node(obj, size, state)
        if buf is not None and buf[0] > 0:
            self.bufs[n] = buf
        return n

    # -- expanding one node

    def take(self, seq, kids, base, depth):
        """The elements of seq, a list of ours holding them at depth: base
        is the reference count of one held only by its parent and our
        list. Atomic ones held by nobody else are summed; containers held
        by nobody else are summed too, and their own elements taken next
        (one level deeper); the rest become nodes, in kids.
        Returns (bytes summed, finished)."""
        kinds = self.kinds
        nodes = self.nodes
        bids = self.bids
        sizers = self.sizers
        getrc = sys.getrefcount
        priv = 0
        folded = 0
        while seq:
            deeper = [] if depth + 1 < self.max_depth else None
            for c in seq:
                t = type(c)
                k = kinds.get(t)
                if k is None:
                    k = self.classify(t)
                if k == _ATOMIC:
                    if t is int and -5 <= c <= 256:
                        continue
                    if getrc(c) <= base:
                        s = _sizeof(c, sizers)
                        if s < LARGE:
                            priv += s
                            continue
                elif k == _CONTAINER:
                    if deeper is not None and getrc(c) <= base:
                        i = id(c)
                        if i in bids:
                            continue
                        if not (t in _FAST_TYPES and len(c) >= FAST_MIN):
                            s = _sizeof(c, sizers)
                            if s < LARGE:
                                priv += s
                                deeper.extend(_referents(c))
                                folded += 1
                                if not folded & 4095 and self.late():
                                    self.stopped = "time"
                                    return priv, False
                                continue
                elif k <= _BOUNDARY:
                    continue
                i = id(c)
                n = nodes.get(i)
                if n is None:
                    if i in bids:
                        continue
                    n = self.register(c, i, k)
                n.indeg += 1
                if n not in kids:
                    kids[n] = depth
            seq = deeper
            depth += 1
        return priv, True

    def take_many(self, it, kids, extra, depth):
        """take() over an iterator, CHUNK elements at a time (extra: our
        other references to each element); a chunk of atomic elements held
        only by the parent is summed in C. Returns (bytes, finished)."""
        base_map = self.base_map + 1 + extra
        base_loop = self.base_loop + 1 + extra
        kinds = self.kinds
        sizers = self.sizers
        getrc = sys.getrefcount
        priv = 0
        while True:
            try:
                chunk = list(itertools.islice(it, CHUNK))
            except RuntimeError:  # changed size during iteration
                return priv, False
            if not chunk:
                return priv, True
            fast = True
            for t in set(map(type, chunk)):
                k = kinds.get(t)
                if k is None:
                    k = self.classify(t)
                if k != _ATOMIC:
                    fast = False
                    break
                if t not in sizers:
                    sizers[t] = _sizer(t)
                if sizers[t] is not None:
                    fast = False
                    break
            if fast:
                sizes = list(map(sys.getsizeof, chunk))
                fast = (max(sizes) < LARGE and
                        max(map(getrc, chunk)) <= base_map)
            if fast:
                priv += sum(sizes)
                done = True
            else:
                got, done = self.take(chunk, kids, base_loop, depth)
                priv += got
            del chunk
            if not done or self.late():
                self.stopped = "time"
                return priv, False

    def expand(self, n, depth):
        """Enumerate what n references (its children are at depth + 1)."""
        obj = n.obj
        t = type(obj)
        kids = {}
        priv = 0
        done = True
        depth += 1
        if self.kinds.get(t) == _ARRAY:
            try:
                base = obj.base
                elements = (obj.dtype.hasobject and obj.flags.owndata and
                            obj.dtype.fields is None)
            except Exception:
                base, elements = None, False
            if base is not None:  # kids[0]: a node, never summed
                self.take([base], kids, -1, depth)
            if elements:
                priv, done = self.take_many(iter(obj.flat), kids, 0, depth)
        elif t in _FAST_TYPES and len(obj) >= FAST_MIN:
            it = (itertools.chain(obj.keys(), obj.values()) if t is dict
                  else iter(obj))
            priv, done = self.take_many(it, kids, 0, depth)
        else:
            refs = _referents(obj)
            if len(refs) < FAST_MIN:
                priv, done = self.take(refs, kids, self.base_loop + 1, depth)
            else:
                priv, done = self.take_many(iter(refs), kids, 1, depth)
            del refs
        n.size += priv
        n.kids = tuple(kids)
        if kids and max(kids.values()) > depth:  # some found through folds
            self.kid_depths[n] = tuple(d - depth for d in kids.values())
        n.state = (_DONE if done else _PARTIAL) | (n.state & _VIEW)

    # -- the walk itself

    def late(self):
        """Past the budget, counting the time the steps after the walk
        will take (they are linear in the nodes)."""
        return (time.perf_counter() + POST_COST * len(self.nodes) >
                self.deadline)

    def push(self, node, labels, depth):
        s = node.src
        if labels <= s:
            return
        node.src = self.union(s, labels)
        self.queue.append((node, labels if not s else self.labels(labels - s),
                           depth))

    def run(self):
        """Breadth-first from all roots at once (so a budget stop cuts
        every root at about the same depth); labels travel with the
        entries, and a node is expanded once."""
        q = self.queue
        max_depth = self.max_depth
        union = self.union
        labels = self.labels
        kid_depths = self.kid_depths
        steps = 0
        while q:
            n, L, d = q.popleft()
            steps += 1
            if not steps & 255 and self.late():
                self.stopped = "time"
            if self.stopped:
                q.appendleft((n, L, d))
                self.finish()
                return
            st = n.state & _STATE
            if st == _LEAF:
                continue
            if st == _NEW or st == _CUT:
                if d >= max_depth:
                    n.state = _CUT | (n.state & _VIEW)
                    self.cut_depth = True
                    continue
                if st == _CUT:
                    L = n.src  # the labels that stopped here go on now
                self.expand(n, d)
            d += 1
            extra = kid_depths.get(n)
            for j, k in enumerate(n.kids):
                s = k.src
                if L <= s:
                    continue
                k.src = union(s, L)
                q.append((k, L if not s else labels(L - s),
                          d if extra is None else d + extra[j]))

    def finish(self):
        """After a budget stop: carry the labels still queued through the
        nodes already expanded, expanding none, so that every reference
        the walk found counts (and a graph exported from the walk, which
        has no queue, says the same); a node never expanded is partial."""
        q = self.queue
        union = self.union
        labels = self.labels
        while q:
            n, L, d = q.popleft()
            st = n.state & _STATE
            if st == _NEW:
                n.state = _PARTIAL | (n.state & _VIEW)
                continue
            for k in n.kids:
                s = k.src
                if L <= s:
                    continue
                k.src = union(s, L)
                q.append((k, L if not s else labels(L - s), d + 1))

    def external(self, base):
        """Mark what is held from outside the walked graph (and all it
        reaches) with OTHER; the seeds are kept for graph_of."""
        self.seeds = [n for n in self.nodes.values()
                      if _rc(n) - base - n.indeg > 0]
        self.mark_other(self.seeds)


def _referents(obj):
    """A new list of what obj references. A dict's keys are listed too:
    CPython's dict_traverse skips them when they are all str."""
    if type(obj) is dict:
        refs = list(obj)
        refs.extend(obj.values())
        return refs
    refs = gc.get_referents(obj)
    if isinstance(obj, dict) and obj:
        seen = set(map(id, refs))
        refs.extend([k for k in dict.keys(obj) if id(k) not in seen])
    return refs


# ---- agent data --------------------------------------------------------------

def _address(n, kind):
    obj = n.obj
    if kind == _BUF_NDARRAY:
        return obj.__array_interface__["data"][0]
    if kind == _BUF_ID:
        return id(obj)
    import ctypes
    if kind == _BUF_LIST:  # PyListObject: PyObject_VAR_HEAD, ob_item
        return ctypes.c_void_p.from_address(
            id(obj) + 3 * ctypes.sizeof(ctypes.c_void_p)).value
    if kind == _BUF_BYTEARRAY:
        view = (ctypes.c_char * len(obj)).from_buffer(obj)
        try:
            return ctypes.addressof(view)
        finally:
            del view
    if kind == _BUF_ARRAY:
        return obj.buffer_info()[0]
    return None


def _default_lookup():
    try:
        from . import agent
    except ImportError:
        return None, None
    return agent.lookup, getattr(agent, "live_bytes", None)


def _apply_agent(walk, lookup):
    """Ask lookup about every buffer; the blocks it knows replace the
    estimates. False when the agent cannot answer."""
    cands = []
    addrs = []
    for n, (est, kind) in walk.bufs.items():
        try:
            a = _address(n, kind)
        except Exception:
            a = None
        if a:
            cands.append(n)
            addrs.append(a)
    try:
        blocks = lookup(addrs)
    except Exception:
        blocks = None
    if blocks is None or len(blocks) != len(addrs):
        return False
    for n, a, b in zip(cands, addrs, blocks):
        if not isinstance(b, dict):
            continue
        size = b.get("size")
        start = b.get("start")
        if not isinstance(size, int) or not isinstance(start, int):
            continue
        est = walk.bufs[n][0]
        # The block must hold the buffer and not be much more (a pool or
        # an arena would say nothing about this object).
        if not (start <= a < start + size and
                est * 0.9 <= size <= est * 1.1 + BLOCK_SLACK):
            continue
        n.size += size - est
        walk.bufs[n][0] = size
        walk.entries[n] = b
    return True


# ---- relations, for the hints ------------------------------------------------

def _reaches(src, dst, limit=SEARCH_LIMIT):
    """None, or (path crosses an ndarray's .base) for a path src -> dst."""
    if src is dst:
        return False
    seen = {src: False}
    q = collections.deque((src,))
    while q and len(seen) < limit:
        n = q.popleft()
        via = seen[n]
        for j, k in enumerate(n.kids):
            if k in seen:
                continue
            if len(seen) >= limit:
                return None
            v = via or (j == 0 and n.state & _VIEW)
            if k is dst:
                return v
            seen[k] = v
            q.append(k)
    return None


def _is_cache(label):
    return (label in _OUTPUT_NAMES or label.startswith("Out[") or
            label.startswith(_HIDDEN[:15]))


def _quote(names):
    return ", ".join("`%s`" % n for n in names)


def _cache_action(label):
    """How to drop an output-cache object no plain name holds."""
    if label.startswith("Out["):
        return "`%%xdel _%s`" % label[4:-1]
    if label.startswith(_HIDDEN[:15]):  # user_ns_hidden['_5']
        return "`get_ipython().user_ns_hidden.pop(%s)`" % label[15:-1]
    return "`%%xdel %s`" % label


def _action(group, node_of):
    """What to type to drop every label in group: `del` for plain names,
    `%xdel NAME` for an object in IPython's output cache (it removes the
    object from user_ns, user_ns_hidden, Out, the displayhook and the last
    execution result; `del` and `%reset -f out` leave some of these)."""
    by_node = {}
    for g in group:
        if g != OTHER:
            by_node.setdefault(node_of.get(g), []).append(g)
    dels, xdels = [], []
    for labels in by_node.values():
        plain = sorted(g for g in labels if not _is_cache(g))
        cached = sorted(g for g in labels if _is_cache(g))
        if cached:
            shown = [g for g in cached if not g.startswith(_HIDDEN[:15])]
            if plain or shown:  # %xdel drops the hidden ones too
                xdels.append("`%%xdel %s`" % plain[0] if plain
                             else _cache_action(shown[0]))
            else:
                xdels.extend(_cache_action(g) for g in cached)
        else:
            dels.extend(plain)
    parts = []
    if dels:
        parts.append("`del %s`" % ", ".join(sorted(dels)))
    return " + ".join(parts + sorted(xdels))


def _freed(by_src, group):
    group = frozenset(group)
    return sum(b for s, b in by_src.items() if s <= group)


def _hint(rec, node_of, labels_of, by_src):
    name = rec.name
    alone = ("clearing `%s`" % name if _is_cache(name) else
             "`del %s`" % name)
    # A few shared KiB (column names, an Index) are not worth a reason:
    # only a share the user could miss explains itself.
    shared = rec.bytes - rec.exclusive_bytes
    if shared <= max(rec.bytes * 0.01, HINT_SHARED_MIN) or \
            not rec.shared_with:
        if _is_cache(name):
            alone = _action({name}, node_of)
        return "%s frees %s" % (alone, human(rec.exclusive_bytes))
    me = node_of[name]
    reasons = []
    same_cache = []
    names = [s for s in rec.shared_with if s != OTHER]
    others = {}  # the other objects, with the names bound to each
    for s in names:
        other = node_of.get(s)
        if other is me:
            if _is_cache(s):
                same_cache.append(s)
            else:
                reasons.append("`%s` is the same object" % s)
        else:
            others.setdefault(other, []).append(s)
    for other, labels in others.items():
        labels.sort(key=lambda g: (_is_cache(g), g))
        who = "`%s`" % labels[0]
        if len(labels) > 1:
            who += " (also %s)" % _quote(labels[1:])
        what = "`%s`" % labels[0] if len(labels) == 1 else who
        if other is None:
            reasons.append("shares objects with %s" % what)
            continue
        via = _reaches(other, me)
        if via is not None:
            if via and other.state & _VIEW:
                reasons.append("%s is a view of it" % who)
            elif via:
                reasons.append("%s holds a view of it" % who)
            else:
                reasons.append("%s refers to it" % who)
            continue
        via = _reaches(me, other)
        if via is not None:
            reasons.append(("it is a view of %s" if via and me.state & _VIEW
                            else "it holds a view of %s" if via else
                            "it refers to %s") % what)
        else:
            reasons.append("shares objects with %s" % what)
    if same_cache:
        reasons.insert(0, "cached as %s" % _quote(same_cache))
    if OTHER in rec.shared_with:
        reasons.append("something outside the notebook's names holds "
                       "part of it %s" % OTHER)
    text = "%s frees %s" % (alone, human(rec.exclusive_bytes))
    if rec.exclusive_bytes:
        text += " of %s" % human(rec.bytes)
    text += ": " + "; ".join(reasons[:4])
    if names:
        group = {name} | set(names)
        # %xdel drops every binding of the object, and so every label
        for g in list(group):
            if _is_cache(g):
                group |= labels_of.get(node_of.get(g), set())
        freed = _freed(by_src, group)
        if freed > rec.exclusive_bytes:
            text += "; %s frees %s" % (_action(group, node_of), human(freed))
    return text


# ---- cells from the input history -------------------------------------------

_OUT_LABEL = re.compile(r"^(?:Out\[(\d+)\]|_(\d+)|user_ns_hidden\['_(\d+)'\])$")
# A line binding a name, for a cell that does not parse (the name first:
# `x = ...`, `x, y = ...`; not `x == ...`).
_BIND_LINE = re.compile(r"^\s*([^\W\d]\w*)\s*(?:,[^=\n]*)?=(?!=)", re.M)
_CELL_CACHE = {}     # cell source -> the names it leaves bound
_CELL_CACHE_MAX = 4096
# Statements whose bodies run at module level (their bindings are global).
_BLOCKS = ("body", "orelse", "finalbody", "handlers")


def _targets(node, out):
    """The names an assignment target binds: x, (x, y), [x, *rest];
    attributes and subscripts bind none."""
    if isinstance(node, ast.Name):
        out.append(node.id)
    elif isinstance(node, (ast.Tuple, ast.List)):
        for e in node.elts:
            _targets(e, out)
    elif isinstance(node, ast.Starred):
        _targets(node.value, out)


def _walrus(node, out):
    """Names bound by `(x := ...)` in an expression at module level
    (a comprehension's walrus binds in the module too; a lambda's not)."""
    todo = [node]
    while todo:
        n = todo.pop()
        if isinstance(n, ast.Lambda):
            continue
        if isinstance(n, getattr(ast, "NamedExpr", ())):
            _targets(n.target, out)
        todo.extend(ast.iter_child_nodes(n))


def _events(stmts, out):
    """(name, bound) for each binding or `del` of a global name in stmts,
    in source order; bodies of if/for/while/with/try are module level
    too, function and class bodies are not."""
    for st in stmts:
        names = []
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef,
                           ast.ClassDef)):
            out.append((st.name, True))
            continue
        if isinstance(st, ast.Delete):
            for t in st.targets:
                _targets(t, names)
            out.extend((x, False) for x in names)
            continue
        if isinstance(st, (ast.Import, ast.ImportFrom)):
            for a in st.names:
                if a.name != "*":
                    names.append(a.asname or a.name.split(".")[0])
        elif isinstance(st, ast.Assign):
            _walrus(st.value, names)
            for t in st.targets:
                _targets(t, names)
        elif isinstance(st, ast.AugAssign):
            _walrus(st.value, names)
            _targets(st.target, names)
        elif isinstance(st, ast.AnnAssign):
            if st.value is not None:
                _walrus(st.value, names)
                _targets(st.target, names)
        elif isinstance(st, (ast.For, ast.AsyncFor)):
            _walrus(st.iter, names)
            _targets(st.target, names)
        elif isinstance(st, (ast.With, ast.AsyncWith)):
            for item in st.items:
                _walrus(item.context_expr, names)
                if item.optional_vars is not None:
                    _targets(item.optional_vars, names)
        elif isinstance(st, (ast.If, ast.While)):
            _walrus(st.test, names)
        elif isinstance(st, ast.Expr):
            _walrus(st.value, names)
        out.extend((x, True) for x in names)
        for field in _BLOCKS:
            inner = getattr(st, field, None)
            if isinstance(inner, list):
                _events([x for x in inner if isinstance(x, ast.stmt)] +
                        [y for h in inner if isinstance(h, ast.excepthandler)
                         for y in h.body], out)


def _cell_binds(source):
    """The names a cell leaves bound: those whose last binding-relevant
    statement in it binds (not `del`). A cell that does not parse (a
    magic left untransformed, another Python's syntax) is read line by
    line. Cached by source: a cell's text never changes."""
    got = _CELL_CACHE.get(source)
    if got is not None:
        return got
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        got = frozenset(m.group(1) for m in _BIND_LINE.finditer(source))
    else:
        last = {}
        events = []
        _events(tree.body, events)
        for name, bound in events:
            last[name] = bound
        got = frozenset(x for x, bound in last.items() if bound)
    if len(_CELL_CACHE) >= _CELL_CACHE_MAX:
        _CELL_CACHE.clear()
    _CELL_CACHE[source] = got
    return got


def _cell_from_history(label, history):
    """The cell a root comes from: "In [N]" for Out[N] (and `_N`,
    user_ns_hidden['_N']); for a name, the last cell of history (IPython's
    _ih: index = cell number, transformed source) that leaves it bound;
    None for `_`, `__`, `___` and when unknown. A `del NAME` cell does not
    count, but since the name exists now, a cell before the `del` does."""
    m = _OUT_LABEL.match(label)
    if m is not None:
        return "In [%d]" % int(next(g for g in m.groups() if g))
    if label in _OUTPUT_NAMES or not isinstance(history, (list, tuple)):
        return None
    for i in range(len(history) - 1, 0, -1):
        source = history[i]
        if isinstance(source, str) and label in source and \
                label in _cell_binds(source):
            return "In [%d]" % i
    return None


# ---- big_objs ----------------------------------------------------------------

def _summary(obj, np):
    t = type(obj)
    try:
        if np is not None and isinstance(obj, np.ndarray):
            return "%s %s" % (obj.dtype, obj.shape)
        if t.__module__.startswith("pandas") and \
                t.__name__ in ("DataFrame", "Series", "Index"):
            return "%s" % (obj.shape,)
        if t in (list, tuple, dict, set, frozenset, str, bytes, bytearray):
            return "len %d" % len(obj)
    except Exception:
        pass
    return ""


def _shell_for(ns):
    ipy = sys.modules.get("IPython")
    get = getattr(ipy, "get_ipython", None)
    shell = get() if get is not None else None
    if shell is not None and (ns is None or ns is shell.user_ns):
        return shell
    return None


def big_objs(n=20, min_bytes=DEFAULT_MIN_BYTES, ns=None, budget=DEFAULT_BUDGET,
             max_depth=DEFAULT_DEPTH, hints=DEFAULT_HINTS, _lookup=None):
    """The notebook's names ranked by what `del NAME` (and gc.collect())
    would free: a BigObjects list of Record (name, bytes, exclusive_bytes,
    shared_with, cell, where, kind, hint, complete).

    n: rows kept (None: all); min_bytes: rows reaching less are left out;
    ns: the namespace (default: IPython's user_ns, else the caller's
    globals); budget: seconds for the call (the walk stops in time to
    finish within it; its figures are then lower bounds); max_depth:
    references followed from a root; hints: how many top rows get a hint;
    _lookup: a function standing for memprof_bpf.agent.lookup (tests), or
    False for none."""
    t0 = time.perf_counter()
    shell = _shell_for(ns)
    if ns is None:
        ns = shell.user_ns if shell is not None else \
            sys._getframe(1).f_globals
    history = _history(ns)
    with _walked(ns, shell, budget, max_depth, _lookup) as (walk, node_of,
                                                            rows):
        result = _summarize(walk, node_of, rows, n, min_bytes, hints,
                            history)
        result.estimated = walk.estimated
        result.live_bytes = walk.live_bytes
        if walk.estimated:
            result.notes.append(NO_AGENT if history is None
                                else NO_AGENT_HISTORY)
        node_of = rows = None
    result.elapsed = time.perf_counter() - t0
    return result


def graph_of(ns=None, budget=DEFAULT_BUDGET, max_depth=DEFAULT_DEPTH,
             _lookup=None):
    """big_objs()'s walk as a graph, in the JSON schema the C walker
    (user/names/) writes from outside the process: summarize_graph() of
    it gives big_objs()'s rows, which is how the two builders are checked
    against each other. Arguments as big_objs()'s."""
    t0 = time.perf_counter()
    shell = _shell_for(ns)
    if ns is None:
        ns = shell.user_ns if shell is not None else \
            sys._getframe(1).f_globals
    with _walked(ns, shell, budget, max_depth, _lookup) as (walk, node_of,
                                                            rows):
        return _export(walk, node_of, rows, _history(ns),
                       time.perf_counter() - t0)


def _history(ns):
    """IPython's input history (_ih: cell N's source at index N), or None
    outside a kernel."""
    h = ns.get("_ih")
    return h if isinstance(h, list) else None


@contextlib.contextmanager
def _walked(ns, shell, budget, max_depth, lookup):
    """The walk over ns, with the agent's blocks when it answers (walk.
    estimated, walk.live_bytes); the collector is paused meanwhile (our
    nodes would make every collection walk them) and every node is
    dropped on the way out: nothing is kept."""
    live = None
    if lookup is None:
        lookup, live = _default_lookup()
    was_enabled = gc.isenabled()
    gc.disable()
    walk = _Walk(budget, max_depth, _boundary_ids(ns, shell))
    try:
        node_of, rows = _roots(walk, ns, shell)
        walk.run()
        walk.external(_node_base())
        walk.estimated = not (lookup and _apply_agent(walk, lookup))
        walk.live_bytes = None
        if not walk.estimated and live is not None:
            try:
                walk.live_bytes = live()
            except Exception:
                walk.live_bytes = None
        yield walk, node_of, rows
    finally:
        # A node among its own kids (x.me = x) is a cycle the paused
        # collector would keep, and its object with it, until a collection:
        # let go of every object and kid now.
        for node in walk.nodes.values():
            node.obj = None
            node.kids = ()
        walk.nodes.clear()
        walk.bufs.clear()
        walk.entries.clear()
        walk.kid_depths.clear()
        walk.queue.clear()
        walk.kinds.clear()
        walk.sizers.clear()
        walk.seeds = []
        node_of = rows = None
        if was_enabled:
            gc.enable()


_STATE_NAMES = {_NEW: "partial", _LEAF: "leaf", _DONE: "done",
                _CUT: "cut", _PARTIAL: "partial"}
_STATES = {"leaf": _LEAF, "done": _DONE, "cut": _CUT, "partial": _PARTIAL}


def _export(walk, node_of, rows, history, elapsed):
    """The walk as the graph schema (see summarize_graph): nodes numbered
    in the walk's order, OTHER as the seeds external() found."""
    nodes = list(walk.nodes.values())
    index = {node: i for i, node in enumerate(nodes)}
    seeds = set(walk.seeds)
    out = []
    for node in nodes:
        entry = walk.entries.get(node) or {}
        out.append({
            "type": type(node.obj).__name__, "size": node.size,
            "state": _STATE_NAMES[node.state & _STATE],
            "view": bool(node.state & _VIEW),
            "kids": [index[k] for k in node.kids],
            "other": node in seeds,
            "cell": entry.get("cell"), "where": entry.get("where")})
    row_set = set(rows)
    roots = [{"label": label, "node": index[node], "row": label in row_set,
              "summary": walk.summaries.get(label, ("", ""))[1]}
             for label, node in node_of.items()]
    return {
        "pid": os.getpid(), "python": sys.version.split()[0],
        "total_live_bytes": walk.live_bytes, "estimated": walk.estimated,
        "elapsed": elapsed, "max_depth": walk.max_depth,
        "stopped": walk.stopped, "cut_depth": walk.cut_depth,
        "unreadable": 0,
        "history": ([x if isinstance(x, str) else "" for x in history]
                    if history is not None else None),
        "nodes": out, "roots": roots}


def _node_base():
    """_rc() of an object held by nothing but its node."""
    return _rc(_Node(object(), 0, _LEAF))


def _roots(walk, ns, shell):
    """Register the roots: a node per distinct object, its labels, and its
    bindings as references found. Returns ({label: node}, [row labels])."""
    np = sys.modules.get("numpy")
    node_of = {}
    rows = []
    groups = {}
    for label, obj, refs, is_row in _bindings(ns, shell):
        t = type(obj)
        k = walk.kinds.get(t)
        if k is None:
            k = walk.classify(t)
        if k <= _BOUNDARY or id(obj) in walk.bids:
            continue
        if t is int and -5 <= obj <= 256:
            continue
        i = id(obj)
        node = walk.nodes.get(i)
        if node is None:
            node = walk.register(obj, i, k)
        node.indeg += refs
        node_of[label] = node
        groups.setdefault(node, set()).add(label)
        if is_row:
            rows.append(label)
            walk.summaries[label] = (t.__name__, _summary(obj, np))
    for node, labels in groups.items():
        walk.push(node, walk.labels(frozenset(labels)), 0)
    return node_of, rows


def _summarize(walk, node_of, rows, n, min_bytes, hints, history=None):
    """The Records and hints of a labelled graph, whichever builder made
    it (_Walk in the process, _Graph from JSON): walk gives nodes, queue,
    entries, summaries, stopped, cut_depth and max_depth."""
    by_src = collections.defaultdict(int)
    cut = set()
    for node in walk.nodes.values():
        by_src[node.src] += node.size
        if node.state & _STATE in (_CUT, _PARTIAL):
            cut |= node.src
    for node, labels, d in walk.queue:
        cut |= node.src
    by_src = dict(by_src)
    # The largest tracked buffer each label reaches.
    alloc = {}
    for node in sorted(walk.entries, key=lambda x: -x.size):
        for label in node.src:
            alloc.setdefault(label, walk.entries[node])
    per_label = collections.defaultdict(lambda: collections.defaultdict(int))
    reach = collections.defaultdict(int)
    row_set = set(rows)
    total = 0
    for s, b in by_src.items():
        if s & row_set:
            total += b
        for label in s:
            if label in row_set:
                reach[label] += b
                shared = per_label[label]
                for other in s:
                    if other != label:
                        shared[other] += b
    records = []
    for label in rows:
        kind, summary = walk.summaries[label]
        r = Record(label, kind, summary)
        r.bytes = reach.get(label, 0)
        r.exclusive_bytes = by_src.get(frozenset((label,)), 0)
        r.shared_bytes = dict(per_label.get(label, {}))
        r.shared_with = [s for s, b in sorted(r.shared_bytes.items(),
                                              key=lambda x: (-x[1], x[0]))
                         if b >= r.bytes * 0.01 and
                         (s != OTHER or b >= 1024 or b >= r.bytes * 0.5)]
        entry = alloc.get(label)
        if entry is not None:
            r.cell = entry.get("cell")
            r.where = entry.get("where")
        r.complete = label not in cut
        records.append(r)
    records.sort(key=lambda r: (-r.exclusive_bytes, -r.bytes, r.name))
    records = [r for r in records if r.bytes >= (min_bytes or 0)]
    if n is not None:
        records = records[:max(n, 0)]
    for r in records:  # the rows kept only: a lookup may scan the history
        # no agent block said which cell allocated it, or it said no
        # number: "(before attach)", or a kernel without the extension's
        # code file ("2874088921.py"): the history knows
        if r.cell is None or not r.cell.startswith("In ["):
            r.cell = _cell_from_history(r.name, history) or r.cell
    labels_of = {}
    for label, node in node_of.items():
        labels_of.setdefault(node, set()).add(label)
    for r in records[:hints or 0]:
        r.hint = _hint(r, node_of, labels_of, by_src)
        if not r.complete:
            r.hint += " (lower bound: the walk was cut)"
    notes = []
    if walk.stopped == "time":
        notes.append("the walk ran out of its time budget: figures marked "
                     "\u2265 are lower bounds")
    if walk.cut_depth:
        notes.append("the walk stopped at depth %d: figures marked \u2265 "
                     "are lower bounds" % walk.max_depth)
    return BigObjects(records, notes, complete=not (cut or walk.stopped),
                      total_bytes=total, nodes=len(walk.nodes),
                      names=len(rows))


# ---- a graph from outside the process ----------------------------------------

class GraphError(ValueError):
    """A graph that does not have the schema summarize_graph reads."""


def _get(d, key, kinds, what, default=None, required=False):
    """d[key] checked against kinds (bool is not an int here); default
    when absent (or null, for an optional field)."""
    if key not in d or (d[key] is None and not required):
        if required:
            raise GraphError("%s has no %r" % (what, key))
        return default
    v = d[key]
    if isinstance(v, bool) and bool not in kinds or not isinstance(v, kinds):
        raise GraphError("%s: %r is %s, not %s" % (
            what, key, type(v).__name__,
            " or ".join(k.__name__ for k in kinds)))
    return v


class _Graph(_Labels):
    """A graph read from JSON (the C walker's, or graph_of's): _Nodes like
    _Walk's, without objects. The labels travel from the roots breadth-
    first as in _Walk.run; nothing is expanded here (the C side already
    stopped at max_depth: its "cut" nodes stay cut), so every label goes
    through every node listed. OTHER comes from the "other" nodes."""

    def __init__(self, graph):
        self.sets = {}
        self.unions = {}
        self.queue = ()
        self.entries = {}
        self.summaries = {}
        if not isinstance(graph, dict):
            raise GraphError("a graph is a JSON object, not %s"
                             % type(graph).__name__)
        g = "graph"
        self.pid = _get(graph, "pid", (int,), g, required=True)
        g = "pid %d" % self.pid
        self.python = _get(graph, "python", (str,), g)
        self.live_bytes = _get(graph, "total_live_bytes", (int,), g)
        self.estimated = _get(graph, "estimated", (bool,), g, True)
        self.elapsed = float(_get(graph, "elapsed", (int, float), g, 0.0))
        self.max_depth = _get(graph, "max_depth", (int,), g, DEFAULT_DEPTH)
        self.stopped = _get(graph, "stopped", (str,), g)
        if self.stopped not in (None, "time", "exited"):
            raise GraphError("%s: unknown 'stopped' %r" % (g, self.stopped))
        self.cut_depth = _get(graph, "cut_depth", (bool,), g, False)
        self.unreadable = _get(graph, "unreadable", (int,), g, 0)
        self.history = _get(graph, "history", (list,), g)
        nodes = self._nodes(_get(graph, "nodes", (list,), g, required=True),
                            g)
        self.nodes = dict(enumerate(nodes))
        self.node_of, self.rows = self._roots(
            _get(graph, "roots", (list,), g, required=True), nodes, g)
        self.propagate()
        self.mark_other([x for x, o in zip(nodes, self.other) if o])
        self.other = None

    def _nodes(self, raw, g):
        """_Nodes from the JSON nodes: size, state | _VIEW, kids."""
        nodes = []
        types_ = []
        self.other = []
        for i, d in enumerate(raw):
            what = "%s: node %d" % (g, i)
            if not isinstance(d, dict):
                raise GraphError("%s is not an object" % what)
            size = _get(d, "size", (int,), what, required=True)
            state = _STATES.get(_get(d, "state", (str,), what,
                                     required=True))
            if state is None or size < 0:
                raise GraphError("%s: bad %s" % (
                    what, "size" if size < 0 else "state %r" % d["state"]))
            if _get(d, "view", (bool,), what, False):
                state |= _VIEW
            node = _Node(None, size, state)
            types_.append(_get(d, "type", (str,), what, "?"))
            self.other.append(_get(d, "other", (bool,), what, False))
            cell = _get(d, "cell", (str,), what)
            where = _get(d, "where", (str,), what)
            if cell is not None or where is not None:
                self.entries[node] = {"cell": cell, "where": where}
            node.kids = _get(d, "kids", (list,), what, [])
            nodes.append(node)
        n = len(nodes)
        for i, node in enumerate(nodes):
            kids = []
            for k in node.kids:
                if isinstance(k, bool) or not isinstance(k, int) or \
                        not 0 <= k < n:
                    raise GraphError("%s: node %d: kid %r is not a node "
                                     "index (0..%d)" % (g, i, k, n - 1))
                kids.append(nodes[k])
            # distinct, in order: kids[0] of a view is its .base
            node.kids = tuple(dict.fromkeys(kids))
        self.types = types_
        return nodes

    def _roots(self, raw, nodes, g):
        """{label: node} and the row labels, as _roots() in the process."""
        node_of = {}
        rows = []
        for j, d in enumerate(raw):
            what = "%s: root %d" % (g, j)
            if not isinstance(d, dict):
                raise GraphError("%s is not an object" % what)
            label = _get(d, "label", (str,), what, required=True)
            i = _get(d, "node", (int,), what, required=True)
            if not 0 <= i < len(nodes):
                raise GraphError("%s: node %d is not a node index (0..%d)"
                                 % (what, i, len(nodes) - 1))
            node_of[label] = nodes[i]
            if _get(d, "row", (bool,), what, True) and \
                    label not in self.summaries:
                rows.append(label)
                self.summaries[label] = (
                    self.types[i], _get(d, "summary", (str,), what, ""))
        return node_of, rows

    def propagate(self):
        """Every root's label to every node it reaches (breadth-first, a
        set of new labels per step, as _Walk.run carries them)."""
        groups = {}
        for label, node in self.node_of.items():
            groups.setdefault(node, set()).add(label)
        q = collections.deque()
        union, labels = self.union, self.labels
        for node, group in groups.items():
            node.src = labels(frozenset(group))
            q.append((node, node.src))
        while q:
            n, L = q.popleft()
            for k in n.kids:
                s = k.src
                if L <= s:
                    continue
                k.src = union(s, L)
                q.append((k, L if not s else labels(L - s)))


def summarize_graph(graph, n=20, min_bytes=DEFAULT_MIN_BYTES,
                    hints=DEFAULT_HINTS):
    """big_objs()'s table for a graph in the JSON schema (one process:
    pid, python, total_live_bytes, estimated, elapsed, max_depth,
    stopped, cut_depth, unreadable, history, nodes, roots), as the C
    walker writes it from outside the process or graph_of() in it.
    Raises GraphError for a graph of another shape."""
    g = _Graph(graph)
    result = _summarize(g, g.node_of, g.rows, n, min_bytes, hints,
                        g.history)
    result.title = "memprof-bpf names"
    result.pid, result.python = g.pid, g.python
    result.estimated = g.estimated
    result.live_bytes = g.live_bytes
    result.elapsed = g.elapsed
    if g.estimated:
        result.notes.append(NO_AGENT_OUTSIDE)
    if g.stopped == "exited":
        result.notes.append(EXITED)
    if g.unreadable > 0:
        result.notes.append("%d objects changed while read and were left "
                            "out" % g.unreadable)
    result.complete = result.complete and not g.cut_depth
    return result


# ---- the command line --------------------------------------------------------

_PROG = "memprof-bpf names"


class _CliParser(argparse.ArgumentParser):
    """An argument error is one line on stderr and exit 2."""

    def error(self, message):
        sys.stderr.write("%s: %s\n" % (_PROG, message))
        sys.exit(2)


def _load_graphs(path):
    """The graphs in a file (or stdin for "-"): a JSON list of them, or
    one."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise GraphError("cannot read %s: %s" % (path, e))
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise GraphError("%s is not JSON: %s" % (path, e))
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise GraphError("%s holds %s, not a graph or a list of graphs"
                         % (path, type(doc).__name__))
    return doc


def _as_json(result):
    """One process's table as the --format json object."""
    return {
        "pid": result.pid, "python": result.python,
        "total_live_bytes": result.live_bytes, "complete": result.complete,
        "estimated": result.estimated, "notes": list(result.notes),
        "names": [{"name": r.name, "type": r.kind, "summary": r.summary,
                   "bytes": r.bytes, "exclusive_bytes": r.exclusive_bytes,
                   "shared_with": list(r.shared_with), "cell": r.cell,
                   "where": r.where, "hint": r.hint,
                   "complete": r.complete} for r in result]}


def main(argv=None):
    """python3 -m memprof_bpf.names --graph FILE|- [--format text|json]
    [-n N] [--min-bytes B] [--hints N]: the table of each graph the C
    agent read (exit 2, one line on stderr, for input it cannot read)."""
    p = _CliParser(prog="python3 -m memprof_bpf.names",
                   description="The names of each process in a graph file "
                   "ranked by what `del` would free.")
    p.add_argument("--graph", required=True, metavar="FILE|-",
                   help="a JSON graph, or a list of them ('-': stdin)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-n", type=int, default=20,
                   help="rows per process (default 20; 0: all)")
    p.add_argument("--min-bytes", type=int, default=DEFAULT_MIN_BYTES,
                   help="leave out names reaching fewer bytes (default "
                   "%d)" % DEFAULT_MIN_BYTES)
    p.add_argument("--hints", type=int, default=DEFAULT_HINTS,
                   help="rows that get a hint (default %d)" % DEFAULT_HINTS)
    args = p.parse_args(argv)
    try:
        results = []
        for i, graph in enumerate(_load_graphs(args.graph)):
            try:
                results.append(summarize_graph(
                    graph, n=args.n or None, min_bytes=args.min_bytes,
                    hints=args.hints))
            except GraphError as e:
                raise GraphError("graph %d: %s" % (i, e))
            except (ValueError, TypeError, RecursionError) as e:
                raise GraphError("graph %d: %s" % (i, e))
    except GraphError as e:
        sys.stderr.write("%s: %s\n" % (_PROG, " ".join(str(e).split())))
        return 2
    if args.format == "json":
        text = json.dumps([_as_json(r) for r in results], indent=1)
    else:
        text = "\n\n".join("pid %s (python %s)\n%s" % (
            r.pid, r.python or "?", r) for r in results)
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
