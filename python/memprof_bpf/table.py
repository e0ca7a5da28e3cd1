"""%memprof's per-cell table: asked of the agent, or from its state file.

A kernel asks the agent over its query socket ({"op": "cells"}): the agent
first applies every record the kernel made before asking, so the cell that
just ended shows done with its final figures. When the socket cannot answer,
the agent's <state dir>/<pid>.json (rewritten atomically every interval for
each traced kernel) is read instead, and the table says so. Reading the file
is read_state(); turning a document into text is render(), a pure function
of the decoded document.
"""

import datetime
import json
import os
import re

from . import agent
from .agent import state_dir

SORT_KEYS = ("live", "peak", "time")
SOURCE_WIDTH = 40


def no_agent(pid):
    return ("memprof-bpf: no agent is tracing this kernel (pid %d); "
            "run: sudo memprof-bpf --comm ipykernel" % pid)


class StateError(Exception):
    """The state file is there but cannot be used; str() is the one line."""


def read_state(pid, directory=None):
    """The agent's document for process pid, or None when no live agent
    publishes one. Raises StateError if the file is unreadable or corrupt."""
    path = os.path.join(directory or state_dir(), "%d.json" % pid)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StateError("memprof-bpf: cannot read %s: %s"
                         % (path, e.strerror or e))
    try:
        doc = json.loads(data.decode("utf-8"))
        check(doc)
    except (ValueError, TypeError, KeyError) as e:
        raise StateError("memprof-bpf: %s is corrupt (%s)" % (path, e))
    if not agent.running(directory, doc["agent_pid"]):
        return None
    return doc


def check(doc):
    """Raise ValueError unless doc has the fields render() relies on."""
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    for key in ("agent_pid", "live_bytes", "peak_bytes"):
        if not isinstance(doc.get(key), int):
            raise ValueError("%s is not an integer" % key)
    cells = doc.get("cells")
    if not isinstance(cells, list) or not all(isinstance(c, dict)
                                              for c in cells):
        raise ValueError("cells is not a list of objects")


# ---- units and times ---------------------------------------------------------

def human(n):
    """Bytes in binary units: '512 B', '1.5 KiB', '12.0 MiB' ('-' for None)."""
    if not isinstance(n, (int, float)) or isinstance(n, bool):
        return "-"
    if abs(n) < 1024:
        return "%d B" % n
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024.0
        if abs(value) < 1024 or unit == "TiB":
            break
    return "%.1f %s" % (value, unit)


_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
                  r"(Z|[+-]\d\d:?\d\d)?$")


def parse_time(text):
    """An ISO-8601 time (the agent writes 2026-11-23T22:49:48.123Z) as an
    aware datetime, or None. fromisoformat() takes 'Z' only from 3.11."""
    m = _ISO.match(text) if isinstance(text, str) else None
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    zone = m.group(8)
    if zone in (None, "Z"):
        tz = datetime.timezone.utc
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = datetime.timezone(sign * datetime.timedelta(
            hours=int(digits[:2]), minutes=int(digits[2:])))
    return datetime.datetime(y, mo, d, h, mi, s, micro, tzinfo=tz)


def duration(started, finished):
    """'running', '1.23 s', '2m05s', '1h02m' or '-' (start unknown)."""
    t0 = parse_time(started)
    if t0 is None:
        return "-"
    if finished is None:
        return "running"
    t1 = parse_time(finished)
    if t1 is None:
        return "-"
    s = max((t1 - t0).total_seconds(), 0.0)
    if s < 60:
        return "%.2f s" % s
    if s < 3600:
        return "%dm%02ds" % (s // 60, s % 60)
    return "%dh%02dm" % (s // 3600, s % 3600 // 60)


def shorten(text, width=SOURCE_WIDTH):
    """text on one line, at most width characters (an ellipsis if cut)."""
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[:width - 1] + "\u2026"


# ---- the table ---------------------------------------------------------------

def _int(value):
    return value if isinstance(value, int) else 0


def _sorted(cells, sort):
    """live, peak: largest first; time: in the order the runs started (the
    allocations outside any cell, never started, last)."""
    if sort == "live":
        return sorted(cells, key=lambda c: -_int(c.get("live_bytes")))
    if sort == "peak":
        return sorted(cells, key=lambda c: -_int(c.get("peak_bytes_during")))
    if sort == "time":
        never = datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)
        return sorted(cells, key=lambda c: parse_time(c.get("started_at"))
                      or never)
    raise ValueError("sort must be one of %s" % ", ".join(SORT_KEYS))


def rows(doc, sort="live", top=None):
    """The table's rows (lists of cell strings), in sort order."""
    cells = _sorted(doc.get("cells") or [], sort)
    if top is not None:
        cells = cells[:max(top, 0)]
    peak = doc.get("peak_bytes") or 0
    out = []
    for c in cells:
        at_peak = c.get("bytes_at_process_peak")
        share = ("%.1f%%" % (100.0 * at_peak / peak)
                 if peak and isinstance(at_peak, int) else "-")
        count = c.get("count")
        out.append([
            str(c.get("label") or "?"),
            shorten(c.get("source_head")),
            human(c.get("live_bytes")),
            human(c.get("peak_bytes_during")),
            share,
            str(count) if isinstance(count, int) else "-",
            duration(c.get("started_at"), c.get("finished_at")),
        ])
    return out


HEADERS = ["cell", "source", "live", "peak during", "of HWM", "allocs",
           "duration"]
_LEFT = {0, 1}  # label and source read left to right; figures line up right


def header(doc):
    """The line above the table: live now, high-water mark, its cell."""
    line = "memprof-bpf: pid %s, live %s, high-water mark %s" % (
        doc.get("pid", "?"), human(doc.get("live_bytes")),
        human(doc.get("peak_bytes")))
    if doc.get("peak_cell"):
        line += " during %s" % doc["peak_cell"]
    peak_at = parse_time(doc.get("peak_at"))
    if peak_at is not None:
        line += " at %s" % peak_at.astimezone().strftime("%H:%M:%S")
    updated = parse_time(doc.get("updated_at"))
    if updated is not None:
        line += " (updated %s)" % updated.astimezone().strftime("%H:%M:%S")
    return line


def render(doc, sort="live", top=None):
    """The whole report for a state document, as text."""
    body = rows(doc, sort, top)
    if not body:
        return header(doc) + "\nno cell has run under the agent yet"
    table = [HEADERS] + body
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADERS))]

    def fmt(r):
        return "  ".join(v.ljust(w) if i in _LEFT else v.rjust(w)
                         for i, (v, w) in enumerate(zip(r, widths))).rstrip()

    return "\n".join([header(doc), fmt(HEADERS)] +
                     [fmt(r) for r in body])


def ask_agent():
    """This process's document from the agent's query socket, drained up to
    the moment of asking (every cell that ended before is done); (None,
    why) when the socket cannot answer."""
    doc = agent.query("cells")
    if doc is None:
        return None, agent.last_error
    try:
        check(doc)
    except (ValueError, TypeError) as e:
        return None, "the agent's reply is incomplete (%s)" % e
    return doc, None


def report(pid=None, sort="live", top=None, directory=None):
    """What %memprof prints for this process (pid None): the agent's answer
    over its socket, or when the socket does not answer the file it last
    published for us, saying so; for process pid (as the agent names it),
    that file."""
    why = None
    if pid is None:
        doc, why = ask_agent()
        if doc is not None:
            return render(doc, sort, top)
        pid = agent.own_pid()
    try:
        doc = read_state(pid, directory)
    except StateError as e:
        return str(e)
    if doc is None:
        return no_agent(pid)
    text = render(doc, sort, top)
    if why:
        text += ("\n(as the agent last published it: its socket did not "
                 "answer: %s)" % why)
    return text
