"""The peer of bench/outbound_bulk.py: RapidSMS 2.2 sending to N recipients through Kannel.

`rapidsms.router.send(text, connections)` with RapidSMS's own Kannel backend aimed at the
fake gateway, its messagelog app, and the BlockingRouter, on SQLite as smsrouter's bench
runs it (WAL, synchronous=NORMAL). The connections are looked up inside the clock, as
smsrouter's send() looks up its numbers. Two variants, as on smsrouter's side:

* same: one send() of one text to all N connections;
* personal: one send() per recipient, each with its own text.

RapidSMS keeps no per-recipient status: a send() that returns has had its request
answered, so that is when the clock stops. Runs in RapidSMS's virtualenv.

Usage: python bench/peer_rapidsms_bulk.py DB_PATH N same|personal SENDSMS_URL
Prints the seconds.
"""

import sys
import time
import urllib.request

from outbound_bulk import BULK_TEXT, number, personal_text
from peer_rapidsms import configure

urlpatterns: list = []


def main() -> None:
    database, count, variant, sendsms_url = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    configure(
        database, __name__,
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rapidsms",
                        "rapidsms.contrib.messagelog"],
        INSTALLED_BACKENDS={"kannel": {"ENGINE": "rapidsms.backends.kannel.KannelBackend",
                                       "sendsms_url": sendsms_url}},
    )
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from rapidsms.router import lookup_connections, send

    send("warm-up", lookup_connections("kannel", ["+19990000000"]))
    urllib.request.urlopen(sendsms_url.replace("/cgi-bin/sendsms", "/reset"), timeout=10).read()
    numbers = [number(n) for n in range(count)]
    started = time.perf_counter()
    connections = lookup_connections("kannel", numbers)
    if variant == "same":
        send(BULK_TEXT, connections)
    else:
        for n, connection in enumerate(connections):
            send(personal_text(n), [connection])
    print(time.perf_counter() - started)


if __name__ == "__main__":
    main()
