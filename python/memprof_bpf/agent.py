"""Ask the memprof-bpf agent about this process's own memory.

The agent listens on <state dir>/agent.sock (python/README.md, "The agent's
query socket"): one JSON line in, one JSON line out. It knows who asks from
the socket itself and only ever answers about the asking process, so there
is no pid to pass. Every function returns None when there is no agent, it
does not trace this process, or it refuses; `last_error` then says why.
Its replies name the caller by the pid the agent sees, which in a
container's PID namespace is not os.getpid(): own_pid() is that pid.
"""

import json
import operator
import os
import socket

DEFAULT_STATE_DIR = "/run/memprof-bpf"
SOCKET_NAME = "agent.sock"
PID_FILE = "agent.pid"
MAX_ADDRS = 200000  # per request: lookup() splits longer lists
RECV_CHUNK = 1 << 16
CONNECT_TIMEOUT = 1.0

last_error = None  # why the last call returned None, one line
# (os.getpid(), the pid the agent's last reply named), or None: a forked
# child has its own pid, which its own first reply tells.
_named = None


def state_dir():
    """Where the agent publishes: $MEMPROF_BPF_STATE_DIR or /run/memprof-bpf
    (in a container: where its state directory is bind-mounted)."""
    return os.environ.get("MEMPROF_BPF_STATE_DIR") or DEFAULT_STATE_DIR


def socket_path(directory=None):
    return os.path.join(directory or state_dir(), SOCKET_NAME)


# ---- is there an agent, and who are we to it ---------------------------------

def pid_alive(pid):
    """Is there a process pid (ours to signal or not)?"""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _listening(directory):
    """Does something accept connections on the state dir's socket?"""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(socket_path(directory))
    except OSError:
        return False
    return True


def _pid_file(directory):
    try:
        with open(os.path.join(directory, PID_FILE)) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def running(directory=None, pid=None):
    """Does an agent run for the state dir? Its socket accepting a
    connection says so from any PID namespace (a container's kernel cannot
    see the agent's pid); else pid (default: the one in agent.pid) naming a
    live process, for an agent whose socket could not start."""
    directory = directory or state_dir()
    if _listening(directory):
        return True
    return pid_alive(_pid_file(directory) if pid is None else pid)


def pid_in(reply):
    """The caller's pid that an agent's reply names (answers and refusals
    both carry it), or None."""
    pid = reply.get("pid") if isinstance(reply, dict) else None
    if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
        return pid
    return None


def own_pid():
    """This process's pid as the agent knows it: the pid its replies name,
    which it takes from the socket's peer credentials (the host's, where
    os.getpid() is the pid in a container's PID namespace). Asks once when
    no reply was seen; os.getpid() when no agent answers."""
    if _named is None or _named[0] != os.getpid():
        query("live")
    if _named is not None and _named[0] == os.getpid():
        return _named[1]
    return os.getpid()


def _refused(why):
    global last_error
    last_error = why
    return None


def _send(sock, data):
    """Send the request; a refusal may close the socket before it is all
    read, and the reply is still there to read."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def _read_line(sock, chunk):
    """The reply line, read through chunk (a bytearray made before the
    request was sent, so the figures the agent counts never depend on
    whether this read had begun)."""
    parts = []
    while True:
        try:
            n = sock.recv_into(chunk)
        except ConnectionResetError:
            n = 0
        if not n:
            break
        parts.append(bytes(chunk[:n]))
        if b"\n" in parts[-1]:
            break
    return b"".join(parts).split(b"\n", 1)[0]


def _remember(reply):
    """Keep the pid a reply names: own_pid() needs no question of its
    own."""
    global _named
    pid = pid_in(reply)
    if pid is not None:
        _named = (os.getpid(), pid)


def query(op, timeout=5.0, **fields):
    """Send {"op": op, **fields}; the agent's reply as a dict, or None when
    there is no agent, it does not answer in time, or it refuses."""
    global last_error
    request = dict(fields, op=op)
    data = (json.dumps(request, separators=(",", ":")) + "\n").encode()
    chunk = bytearray(RECV_CHUNK)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path())
            _send(sock, data)
            line = _read_line(sock, chunk)
    except OSError as e:  # no socket, no agent, timed out
        return _refused("%s: %s" % (socket_path(), e.strerror or e))
    try:
        reply = json.loads(line.decode("utf-8"))
    except ValueError:
        return _refused("the agent's reply is not JSON: %r" % line[:80])
    if not isinstance(reply, dict):
        return _refused("the agent's reply is not an object")
    _remember(reply)
    if "error" in reply:
        return _refused("memprof-bpf agent: %s" % reply["error"])
    last_error = None
    return reply


def live_bytes():
    """Bytes live in this process now, as the agent counts them (malloc
    family requested sizes + anonymous mappings), or None."""
    reply = query("live")
    return reply["live_bytes"] if reply else None


def lookup(addrs):
    """For each address, the tracked block or anonymous mapping holding it:
    {"addr", "start", "size", "kind", "cell", "file", "line", "function",
    "where"}, or None where none does; None when the agent cannot answer."""
    addrs = [operator.index(a) for a in addrs]
    blocks = []
    for i in range(0, len(addrs) or 1, MAX_ADDRS):
        reply = query("lookup", addrs=addrs[i:i + MAX_ADDRS])
        if reply is None:
            return None
        blocks.extend(reply["blocks"])
    return blocks
