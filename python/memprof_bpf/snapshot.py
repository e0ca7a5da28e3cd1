"""Read a memprof-bpf snapshot file in version 1's shape.

Either version, plain or gzipped (docs/snapshot-format.md): version 2
writes every string, frame and stack once and refers to them by index;
expand() writes them out again, as `memprof-bpf report FILE --format json`
does, so every stack has its "frames" and "cell" as strings.
"""
import gzip
import json

# A version-2 frame's fields that are indexes into "strings".
STRING_FIELDS = ("function", "file", "module", "address")


def load(path):
    """The snapshot at path, as a dict in version 1's shape."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return expand(json.loads(data))


def expand(doc):
    """A version-2 document in version 1's shape (version 1 as it is)."""
    if doc.get("version") != 2:
        return doc
    strings = doc.pop("strings")

    def text(i):
        return None if i is None else strings[i]

    frames = [{k: text(v) if k in STRING_FIELDS else v for k, v in f.items()}
              for f in doc.pop("frames")]
    stacks = [[frames[i] for i in s] for s in doc.pop("stacks")]
    for name in ("peak", "current"):
        for st in doc[name]["stacks"]:
            st["frames"] = stacks[st.pop("stack")]
            st["cell"] = text(st.get("cell"))
    doc["version"] = 1
    return doc
