# Like notebook cells: 40 code objects compiled, run once and freed, so
# later ones land at the addresses of earlier ones. Cell i keeps
# 200,000 + i bytes; each must be reported under its own filename.
import time

kept = {}
for i in range(40):
    src = "kept[%d] = bytearray(%d)\n" % (i, 200_000 + i - 1)
    code = compile(src, "/tmp/cells/cell_%03d.py" % i, "exec")
    exec(code, {"kept": kept, "bytearray": bytearray})
    del code, src
time.sleep(0.2)
