"""The histograms of routing and send times, observed where the work is done (inbound,
sender): a few microseconds each and no SQL. Apart from `smsrouter.metrics`, which
reads them, so that the hot path imports nothing of the scrape's.

With PROMETHEUS_MULTIPROC_DIR set before the process starts (prometheus_client reads it
at import), each process on a host writes its observations to a file of its own there,
and a scrape merges them all.
"""

from prometheus_client import CollectorRegistry, Histogram

#: This process's own histograms; merged across processes in multiprocess mode.
EVENTS = CollectorRegistry(auto_describe=True)
ROUTING = Histogram(
    "smsrouter_routing_seconds", "Time to route one inbound message through the apps.",
    ["backend"], registry=EVENTS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
SENDING = Histogram(
    "smsrouter_send_seconds", "Time of one call to a backend's send(), for one or more messages.",
    ["backend"], registry=EVENTS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
