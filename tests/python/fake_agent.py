"""A stand-in for the memprof-bpf agent's query socket."""
import json
import socket
import threading


class FakeAgent:
    """A Unix socket at <state>/agent.sock answering each request line with
    a given reply (a dict, or raw bytes); records what it was asked."""

    def __init__(self, state, reply):
        self.asked = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(state / "agent.sock"))
        self.sock.listen(4)
        self.reply = reply if isinstance(reply, bytes) else \
            (json.dumps(reply) + "\n").encode()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if not data:  # a client checking that an agent listens
                    continue
                self.asked.append(json.loads(data))
                conn.sendall(self.reply)

    def close(self):
        self.sock.close()
