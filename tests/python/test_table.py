"""%memprof's table: units, order, truncation, and the one-line messages
for a missing, stale, unreadable or corrupt state file."""
import json
import os
import subprocess

import pytest

from fake_agent import FakeAgent
from memprof_bpf import agent, table

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PID = 4242


def cell(label, head, live, peak, at_peak, count, start, end, n=None,
         file="/tmp/ipykernel_4242/1.py"):
    return {"label": label, "execution_count": n, "file": file,
            "source_head": head, "started_at": start, "finished_at": end,
            "live_bytes": live, "live_count": 1, "peak_bytes_during": peak,
            "peak_above_start": peak, "bytes_at_process_peak": at_peak,
            "count": count}


def document(agent_pid):
    """A state document shaped like the agent's (user/output/publish.c)."""
    return {
        "pid": PID, "agent_pid": agent_pid,
        "updated_at": "2026-11-23T22:50:01.000Z",
        "live_bytes": 130 * MiB, "peak_bytes": 400 * MiB,
        "peak_at": "2026-11-23T22:49:50.500Z", "peak_cell": "In [3]",
        "cells": [
            cell("In [2]", "a = np.ones(16 * 2**20)", 128 * MiB, 129 * MiB,
                 128 * MiB, 12, "2026-11-23T22:49:48.000Z",
                 "2026-11-23T22:49:48.250Z", 2),
            cell("In [3]", "tmp = " + "x" * 80, 512, 256 * MiB, 256 * MiB,
                 3, "2026-11-23T22:49:50.000Z", "2026-11-23T22:51:55.000Z",
                 3),
            cell("1234567.py", None, 3 * GiB, 3 * GiB, 0, 7,
                 "2026-11-23T22:49:52.000Z", None),
            {"label": "(outside cells)", "execution_count": None,
             "file": None, "source_head": None, "started_at": None,
             "finished_at": None, "live_bytes": 2 * MiB, "live_count": 9,
             "peak_bytes_during": None, "peak_above_start": None,
             "bytes_at_process_peak": 16 * MiB, "count": 40},
        ],
    }


@pytest.fixture
def live_agent():
    """A live process to stand for the agent."""
    p = subprocess.Popen(["sleep", "60"])
    yield p.pid
    p.kill()
    p.wait()


@pytest.fixture
def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@pytest.fixture
def state(tmp_path, monkeypatch):
    """An empty state dir, and no pid learned from another test's agent."""
    monkeypatch.setenv("MEMPROF_BPF_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(agent, "_named", None)
    return tmp_path


def publish(state, doc, pid=PID):
    (state / ("%d.json" % pid)).write_text(json.dumps(doc))


# ---- units, times, text ------------------------------------------------------

@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (MiB - 1, "1024.0 KiB"), (MiB, "1.0 MiB"), (int(2.25 * MiB), "2.2 MiB"),
    (5 * GiB, "5.0 GiB"), (3 << 40, "3.0 TiB"), (5000 << 40, "5000.0 TiB"),
    (None, "-"), ("12", "-"),
])
def test_human_units(n, text):
    assert table.human(n) == text


def test_times_parse_as_the_agent_writes_them():
    t = table.parse_time("2026-11-23T22:49:48.123Z")
    assert (t.hour, t.minute, t.second, t.microsecond) == (22, 49, 48, 123000)
    assert table.parse_time("2026-11-23T23:49:48+01:00") == \
        table.parse_time("2026-11-23T22:49:48Z")
    assert table.parse_time("yesterday") is None
    assert table.parse_time(None) is None


@pytest.mark.parametrize("start, end, text", [
    ("2026-11-23T22:49:48.000Z", "2026-11-23T22:49:48.250Z", "0.25 s"),
    ("2026-11-23T22:49:48.000Z", "2026-11-23T22:51:53.000Z", "2m05s"),
    ("2026-11-23T22:00:00.000Z", "2026-11-23T23:02:00.000Z", "1h02m"),
    ("2026-11-23T22:49:48.000Z", None, "running"),
    (None, None, "-"),
])
def test_duration(start, end, text):
    assert table.duration(start, end) == text


def test_shorten_keeps_one_line_within_width():
    assert table.shorten("a\n  b\tc") == "a b c"
    s = table.shorten("y" * 100, 40)
    assert len(s) == 40 and s.endswith("\u2026")
    assert table.shorten(None) == ""


# ---- the table ---------------------------------------------------------------

def labels(doc, **kw):
    return [r[0] for r in table.rows(doc, **kw)]


def test_rows_sorted_by_live_by_default():
    doc = document(1)
    assert labels(doc) == ["1234567.py", "In [2]", "(outside cells)",
                           "In [3]"]


def test_rows_sorted_by_peak_and_time():
    doc = document(1)
    assert labels(doc, sort="peak") == ["1234567.py", "In [3]", "In [2]",
                                        "(outside cells)"]
    assert labels(doc, sort="time") == ["In [2]", "In [3]", "1234567.py",
                                        "(outside cells)"]
    with pytest.raises(ValueError):
        table.rows(doc, sort="size")


def test_top_limits_rows():
    doc = document(1)
    assert labels(doc, top=2) == ["1234567.py", "In [2]"]
    assert labels(doc, top=0) == []


def test_row_columns():
    by_label = {r[0]: r for r in table.rows(document(1))}
    assert by_label["In [2]"] == ["In [2]", "a = np.ones(16 * 2**20)",
                                  "128.0 MiB", "129.0 MiB", "32.0%", "12",
                                  "0.25 s"]
    three = by_label["In [3]"]
    assert three[1] == "tmp = " + "x" * 33 + "\u2026"
    assert three[2:] == ["512 B", "256.0 MiB", "64.0%", "3", "2m05s"]
    assert by_label["1234567.py"][1:] == ["", "3.0 GiB", "3.0 GiB", "0.0%",
                                          "7", "running"]
    assert by_label["(outside cells)"][1:] == ["", "2.0 MiB", "-", "4.0%",
                                               "40", "-"]


def test_render_header_and_alignment():
    text = table.render(document(1))
    lines = text.splitlines()
    assert lines[0].startswith("memprof-bpf: pid 4242, live 130.0 MiB, "
                               "high-water mark 400.0 MiB during In [3] at ")
    assert "(updated " in lines[0]
    assert lines[1].split() == ["cell", "source", "live", "peak", "during",
                                "of", "HWM", "allocs", "duration"]
    assert len(lines) == 2 + 4
    # Figures are right-aligned: every row's live column ends where the
    # header's does.
    end = lines[1].index("live") + len("live")
    assert all(line[:end].endswith("B") for line in lines[2:])


def test_render_without_runs_or_peak():
    doc = dict(document(1), cells=[], peak_cell=None, peak_at=None,
               peak_bytes=0)
    text = table.render(doc)
    assert text.splitlines()[0] == \
        "memprof-bpf: pid 4242, live 130.0 MiB, high-water mark 0 B " \
        "(updated %s)" % table.parse_time(doc["updated_at"]).astimezone() \
        .strftime("%H:%M:%S")
    assert text.splitlines()[1] == "no cell has run under the agent yet"
    assert table.rows(dict(doc, cells=document(1)["cells"]))[0][4] == "-"


# ---- the state file ----------------------------------------------------------

NO_AGENT = ("memprof-bpf: no agent is tracing this kernel (pid 4242); "
            "run: sudo memprof-bpf --comm ipykernel")


def test_state_dir_default_and_override(monkeypatch):
    monkeypatch.delenv("MEMPROF_BPF_STATE_DIR", raising=False)
    assert table.state_dir() == "/run/memprof-bpf"
    monkeypatch.setenv("MEMPROF_BPF_STATE_DIR", "/elsewhere")
    assert table.state_dir() == "/elsewhere"


def test_report_from_a_live_agent(state, live_agent):
    publish(state, document(live_agent))
    assert table.report(PID) == table.render(document(live_agent))
    text = table.report(PID, sort="time", top=1)
    assert len(text.splitlines()) == 3 and "In [2]" in text


def test_missing_file(state):
    assert table.report(PID) == NO_AGENT


def test_stale_file_of_a_dead_agent(state, dead_pid):
    publish(state, document(dead_pid))
    assert table.report(PID) == NO_AGENT


def test_unreadable_file(state):
    os.mkdir(str(state / ("%d.json" % PID)))
    text = table.report(PID)
    assert text == "memprof-bpf: cannot read %s/%d.json: Is a directory" \
        % (state, PID)


@pytest.mark.parametrize("content, why", [
    ("{\"pid\": 4242, \"cells\": [", "Expecting"),
    ("[1, 2]", "not a JSON object"),
    ("{\"agent_pid\": \"1\", \"live_bytes\": 0, \"peak_bytes\": 0, "
     "\"cells\": []}", "agent_pid is not an integer"),
    ("{\"agent_pid\": 1, \"live_bytes\": 0, \"peak_bytes\": 0, "
     "\"cells\": [3]}", "cells is not a list of objects"),
    (b"\xff\xfe", "utf-8"),
])
def test_corrupt_file(state, content, why):
    path = state / ("%d.json" % PID)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    text = table.report(PID)
    assert "\n" not in text
    assert text.startswith("memprof-bpf: %s is corrupt (" % path)
    assert why in text


# ---- asking the agent first --------------------------------------------------

def test_this_kernel_asks_the_agent_first(state, live_agent):
    """%memprof in the kernel itself: the agent's answer over its socket
    (drained up to the request), not the file, which may be a second old."""
    mine = dict(document(live_agent), pid=os.getpid())
    stale = json.loads(json.dumps(mine))
    stale["cells"][0]["finished_at"] = None  # the file lags behind
    publish(state, stale, os.getpid())
    fake = FakeAgent(state, mine)
    try:
        text = table.report(sort="time")
    finally:
        fake.close()
    assert fake.asked == [{"op": "cells"}]
    assert text == table.render(mine, "time")
    assert "running" not in text.splitlines()[2]  # In [2] is done
    assert "as the agent last published" not in text


@pytest.mark.parametrize("reply, why", [
    (None, "agent.sock"),  # no socket at all
    ({"error": "not traced", "pid": os.getpid()},
     "memprof-bpf agent: not traced"),
    (b"not json\n", "not JSON"),
    ({"pid": os.getpid(), "cells": []}, "incomplete"),
])
def test_the_file_when_the_socket_cannot_answer(state, live_agent, reply,
                                                why):
    """Said in a last line: the figures may be an interval old."""
    mine = dict(document(live_agent), pid=os.getpid())
    publish(state, mine, os.getpid())
    fake = FakeAgent(state, reply) if reply is not None else None
    try:
        text = table.report()
    finally:
        if fake:
            fake.close()
    lines = text.splitlines()
    assert "\n".join(lines[:-1]) == table.render(mine)
    assert lines[-1].startswith("(as the agent last published it: its "
                                "socket did not answer: ")
    assert why in lines[-1], lines[-1]


def test_another_process_is_read_from_its_file(state, live_agent):
    """Only the kernel itself can ask (the agent answers a caller about
    itself): for another pid the file is read, with no remark."""
    publish(state, document(live_agent))
    assert table.report(PID) == table.render(document(live_agent))


def test_in_a_pid_namespace_the_file_the_agent_names(state, dead_pid):
    """A kernel in a container: os.getpid() is not the pid the agent
    publishes under, nor can the kernel see the agent's pid; the agent's
    replies name the kernel, and its socket says it runs."""
    doc = document(dead_pid)
    publish(state, doc, PID)
    fake = FakeAgent(state, {"pid": PID, "cells": []})  # incomplete
    try:
        text = table.report()
    finally:
        fake.close()
    lines = text.splitlines()
    assert "\n".join(lines[:-1]) == table.render(doc)
    assert "the agent's reply is incomplete" in lines[-1]
    assert fake.asked == [{"op": "cells"}]
