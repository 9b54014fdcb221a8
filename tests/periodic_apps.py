"""An app with a `@periodic` job, for the fault tests: each run appends a line to a file.

The line is `<time.time()> <pid>`; the file is SMSROUTER_TEST_TICKS, opened with O_APPEND
so that the runs of several server processes never overwrite one another.
"""

import os
import time

from smsrouter.router import App, periodic


class TickApp(App):
    @periodic(every=1)
    def tick(self) -> None:
        line = f"{time.time():.6f} {os.getpid()}\n".encode()
        fd = os.open(os.environ["SMSROUTER_TEST_TICKS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def ticks(path: str | os.PathLike[str]) -> list[tuple[float, int]]:
    """The runs recorded in `path` so far: (time, pid), oldest first."""
    try:
        with open(path) as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return []
    return sorted((float(at), int(pid)) for at, pid in (line.split() for line in lines))
