"""`smsrouter-modem`: the bridge's command line, one process per modem.

It needs neither Django nor the project, only smsrouter with its `modem` extra, so it can run
on the small machine the modem is plugged into. It exits 2 when the modem cannot be used
and starting again would not help (a wrong PIN), so that a supervisor told so stops there
rather than lock the SIM with a third try.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smsrouter.modem.bridge import Config

#: The exit status for a modem that must not be retried: the supervisor's units name it.
FATAL = 2


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="smsrouter-modem",
        description="Bridge a GSM modem to smsrouter's ModemBackend over HTTP.")
    parser.add_argument("--device", required=True,
                        help="the modem's serial port, e.g. /dev/ttyUSB0")
    parser.add_argument("--baud", type=int, default=115200, help="default: 115200")
    parser.add_argument("--pin", help="the SIM's PIN, when it asks for one")
    parser.add_argument("--router-url", required=True,
                        help="the backend's URL, e.g. http://server/backend/modem/")
    parser.add_argument("--token", required=True,
                        help="the secret shared with the backend's 'token' option")
    parser.add_argument("--listen", default="127.0.0.1:8765", type=_address,
                        help="where /send and /health listen (default: 127.0.0.1:8765)")
    parser.add_argument("--spool", type=Path, default=Path("smsrouter-modem-spool.json"),
                        help="the file that keeps what must survive a restart "
                        "(default: ./smsrouter-modem-spool.json)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds the modem has to answer a command before the port is "
                        "opened again (default: 10)")
    parser.add_argument("--poll", type=float, default=15.0,
                        help="seconds between polls of the signal, the registration and the "
                        "SIM's messages (default: 15)")
    parser.add_argument("--max-backoff", type=float, default=30.0,
                        help="most seconds between attempts to reopen the modem or reach "
                        "the router (default: 30)")
    return parser.parse_args(argv)


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    """Run the bridge until it is stopped; the process's exit status."""
    options = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        from smsrouter.modem.bridge import Config, FatalModemError
    except ImportError as exc:
        print(f"smsrouter-modem needs smsrouter's modem extra ({exc.name} is missing): "
              "pip install -e 'path/to/smsrouter[modem]'", file=sys.stderr)
        return FATAL
    config = Config(device=options.device, router_url=options.router_url, token=options.token,
                    baud=options.baud, pin=options.pin, listen=options.listen,
                    spool=options.spool, timeout=options.timeout, poll=options.poll,
                    max_backoff=options.max_backoff)
    try:
        asyncio.run(serve(config))
    except FatalModemError as exc:
        print(f"smsrouter-modem: {exc}", file=sys.stderr)
        return FATAL
    except KeyboardInterrupt:
        pass
    return 0


async def serve(config: Config) -> None:
    """The HTTP endpoint, the poster and the modem session, until the modem is fatal."""
    import aiohttp
    from aiohttp import web

    from smsrouter.modem import http
    from smsrouter.modem.bridge import Bridge

    bridge = Bridge(config)
    runner = web.AppRunner(http.application(bridge), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, *config.listen).start()
    logging.getLogger("smsrouter.modem").info(
        "listening on http://%s:%d, posting to %s", *config.listen, config.router_url)
    async with aiohttp.ClientSession() as session:
        posting = asyncio.create_task(bridge.keep_posting(session))
        try:
            await bridge.keep_modem()
        finally:
            posting.cancel()
            await runner.cleanup()


if __name__ == "__main__":
    sys.exit(main())
