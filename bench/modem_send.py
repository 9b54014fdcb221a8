"""SMS per second through the modem bridge: POST /send, AT+CMGS into the simulated modem.

The simulated modem (tests/modemsim.py) answers at once, so this measures the bridge's own
cost per SMS (HTTP, PDU encoding, the AT exchange over a pty, the spool's fsync), the
ceiling above a real modem, which sends some 10 to 30 SMS a minute.
"""

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def ready(session: aiohttp.ClientSession, url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            async with session.get(url + "/health") as answer:
                if answer.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("the bridge did not become ready")


async def run(url: str, messages: int, concurrency: int, text: str) -> tuple[float, int]:
    limit = asyncio.Semaphore(concurrency)
    sent = 0
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        await ready(session, url, time.monotonic() + 20)

        async def one(number: int) -> None:
            nonlocal sent
            async with limit, session.post(url + "/send", json={
                    "id": f"{text[:8]}-{number}", "to": "+255700000001", "text": text}) as answer:
                body = json.loads(await answer.text())
                sent += len(body.get("references", []))

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(messages)))
        return time.perf_counter() - started, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        link, listen = Path(tmp) / "tty", free_port()
        modem = subprocess.Popen(
            [sys.executable, "-m", "tests.modemsim", "--link", str(link), "--control",
             "127.0.0.1:0", "--sim-file", f"{tmp}/sim.json"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        bridge = subprocess.Popen(
            [sys.executable, "-m", "smsrouter.modem.cli", "--device", str(link),
             "--router-url", "http://127.0.0.1:9/backend/modem/", "--token", TOKEN,
             "--listen", f"127.0.0.1:{listen}", "--spool", f"{tmp}/spool.json"],
            cwd=ROOT, stderr=subprocess.DEVNULL)
        try:
            if not modem.stdout.readline().startswith("ready"):
                raise SystemExit("the simulated modem did not start")
            url = f"http://127.0.0.1:{listen}"
            for label, text in [("1 part", "Your next visit is on Monday."),
                                ("3 parts", "Dosage reminder. " * 25)]:
                seconds, parts = asyncio.run(run(url, options.messages, options.concurrency, text))
                print(f"{label}: {options.messages} messages, {parts} SMS in {seconds:.2f} s: "
                      f"{options.messages / seconds:.0f} messages/s, {parts / seconds:.0f} SMS/s")
        finally:
            bridge.terminate()
            modem.terminate()
            bridge.wait()
            modem.wait()
            modem.stdout.close()


if __name__ == "__main__":
    main()
