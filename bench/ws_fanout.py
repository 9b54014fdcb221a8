"""WebSocket fan-out latency of the live httptester: from the POST of an SMS until every
subscriber of its conversation has the frame for it, and for its reply.

The demo runs under uvicorn (SQLite, inline, in-memory channel layer) in its own process;
S WebSocket clients watch one conversation; M messages are posted one after another. The
baseline, measured in the same run, is the POST's own round trip (the webhook answer).
Run by hand: .venv/bin/python bench/ws_fanout.py [-s 10] [-m 100]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from tests.stack import listening_socket, uvicorn  # noqa: E402


def start_demo(folder: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "demo.settings",
           "DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3", "SMSROUTER_PROCESSING": "inline"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    sock = listening_socket()
    server = subprocess.Popen(uvicorn(sock, "--no-access-log", "--log-level", "warning"), cwd=ROOT, env=env,
                              pass_fds=[sock.fileno()])
    port = sock.getsockname()[1]
    sock.close()
    return server, f"127.0.0.1:{port}"


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms"


async def measure(host: str, subscribers: int, messages: int) -> None:
    identity = "+255700000042"
    async with aiohttp.ClientSession() as http:
        sockets = [await http.ws_connect(f"ws://{host}/ws/httptester/httptester-public/%2B255700000042/",
                                         origin=f"http://{host}")  # as the page: Origin is checked
                   for _ in range(subscribers)]
        posts, received, replied = [], [], []
        for n in range(messages):
            started = time.perf_counter()
            async with http.post(f"http://{host}/httptester/httptester-public/",
                                 data={"identity": identity, "text": f"echo {n}"}) as response:
                assert await response.text() == "OK"
            posts.append(time.perf_counter() - started)
            for ws in sockets:
                seen: dict[str, float] = {}
                while "sent" not in seen:
                    frame = json.loads((await ws.receive(timeout=10)).data)
                    key = "received" if frame["direction"] == "in" else frame["status"]
                    seen.setdefault(key, time.perf_counter() - started)
                received.append(seen["received"])
                replied.append(seen["sent"])
        for ws in sockets:
            await ws.close()
    print(f"{subscribers} subscribers, {messages} messages")
    print(f"  POST round trip (baseline)      {percentiles(posts)}")
    print(f"  frame for the message, every subscriber  {percentiles(received)}  "
          f"ratio p50 {statistics.median(received) / statistics.median(posts):.2f}")
    print(f"  frame for its sent reply          {percentiles(replied)}  "
          f"ratio p50 {statistics.median(replied) / statistics.median(posts):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-s", type=int, default=10, help="WebSocket subscribers")
    parser.add_argument("-m", type=int, default=100, help="messages")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server, host = start_demo(folder)
        try:
            asyncio.run(measure(host, args.s, args.m))
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
