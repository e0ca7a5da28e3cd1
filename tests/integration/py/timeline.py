"""A known shape for the timeline: 10 MB held 0.5 s, freed; 0.5 s low;
20 MB held 0.5 s, freed; 0.4 s low."""
import time

time.sleep(0.3)
a = bytearray(10_000_000)
time.sleep(0.5)
del a
time.sleep(0.5)
b = bytearray(20_000_000)
time.sleep(0.5)
del b
time.sleep(0.4)
