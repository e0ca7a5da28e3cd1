import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import heavy_module  # noqa: E402  (12,345,678 bytes)

after = bytearray(3_000_000)  # not during an import
time.sleep(0.2)
