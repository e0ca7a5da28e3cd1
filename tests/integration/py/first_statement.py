x = bytearray(50_000_000)  # line 1: before anything else runs
import time  # noqa: E402

time.sleep(0.2)
