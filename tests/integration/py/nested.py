import time


def make_big():
    a = 1
    x = bytearray(30_000_000)  # line 6
    return x


class Holder:
    def fill(self):
        self.data = [
            make_big() for _ in range(2)  # line 13
        ]


h = Holder()
h.fill()  # line 18
time.sleep(0.2)
