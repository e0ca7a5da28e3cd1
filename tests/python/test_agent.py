"""memprof_bpf.agent's view of the agent: is one running, and which pid
does it know this process by (in a container's PID namespace, not
os.getpid())."""
import os
import socket
import subprocess

import pytest

from fake_agent import FakeAgent
from memprof_bpf import agent

HOST_PID = 4242


@pytest.fixture
def state(tmp_path, monkeypatch):
    """An empty state dir, and no pid learned from another test's agent."""
    monkeypatch.setenv("MEMPROF_BPF_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(agent, "_named", None)
    return tmp_path


@pytest.fixture
def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("reply, pid", [
    ({"pid": 7, "live_bytes": 0}, 7),
    ({"error": "not traced", "pid": 7}, 7),
    ({"error": "bad JSON"}, None),
    ({"pid": 0}, None), ({"pid": True}, None), ({"pid": "7"}, None),
    ([7], None), (None, None),
])
def test_pid_in(reply, pid):
    assert agent.pid_in(reply) == pid


def test_own_pid_without_an_agent(state):
    assert agent.own_pid() == os.getpid()


def test_own_pid_is_the_one_the_agent_names(state):
    fake = FakeAgent(state, {"pid": HOST_PID, "live_bytes": 1,
                             "live_count": 1, "peak_bytes": 1})
    try:
        assert agent.own_pid() == HOST_PID
        assert agent.own_pid() == HOST_PID
        assert fake.asked == [{"op": "live"}]  # asked once
    finally:
        fake.close()
    assert agent.own_pid() == HOST_PID  # known without asking again


def test_a_refusal_names_the_caller_too(state):
    fake = FakeAgent(state, {"error": "not traced", "pid": HOST_PID})
    try:
        assert agent.query("cells") is None
        assert agent.last_error == "memprof-bpf agent: not traced"
        assert agent.own_pid() == HOST_PID
        assert fake.asked == [{"op": "cells"}]
    finally:
        fake.close()


def test_a_forked_child_asks_for_its_own(state, monkeypatch):
    monkeypatch.setattr(agent, "_named", (os.getpid() + 1, HOST_PID))
    assert agent.own_pid() == os.getpid()


def test_running_by_the_socket(state, dead_pid):
    """The agent's pid may be invisible (another PID namespace): a socket
    that accepts is enough."""
    (state / "agent.pid").write_text("%d\n" % dead_pid)
    assert not agent.running()
    fake = FakeAgent(state, {"pid": HOST_PID})
    try:
        assert agent.running()
        assert agent.running(str(state), dead_pid)
        assert fake.asked == []  # connecting asks nothing
    finally:
        fake.close()


def test_running_by_the_pid(state, dead_pid):
    """An agent whose socket could not start, or a stale socket file."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(state / "agent.sock"))
    sock.close()  # the file stays, nothing listens
    assert not agent.running()
    (state / "agent.pid").write_text("%d\n" % os.getpid())
    assert agent.running()
    assert not agent.running(pid=dead_pid)
    (state / "agent.pid").write_text("junk\n")
    assert not agent.running()
