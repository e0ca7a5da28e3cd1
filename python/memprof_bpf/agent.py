"""Ask the memprof-bpf agent about this process's own memory.

The agent listens on <state dir>/agent.sock (python/README.md, "The agent's
query socket"): one JSON line in, one JSON line out. It knows who asks from
the socket itself and only ever answers about the asking process, so there
is no pid to pass. Every function returns None when there is no agent, it
does not trace this process, or it refuses; `last_error` then says why.
"""

import json
import operator
import os
import socket

DEFAULT_STATE_DIR = "/run/memprof-bpf"
SOCKET_NAME = "agent.sock"
MAX_ADDRS = 200000  # per request: lookup() splits longer lists
RECV_CHUNK = 1 << 16

last_error = None  # why the last call returned None, one line


def state_dir():
    """$MEMPROF_BPF_STATE_DIR or /run/memprof-bpf, as table.state_dir()."""
    return os.environ.get("MEMPROF_BPF_STATE_DIR") or DEFAULT_STATE_DIR


def socket_path():
    return os.path.join(state_dir(), SOCKET_NAME)


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
