"""What the bridge must not lose across a restart, in one small JSON file.

The SIM keeps a received SMS until the router has it (it is deleted only after a 2xx),
and the spool keeps its decoded copy beside it. A status report exists nowhere else once
the modem has shown it (+CDS), so it waits here until the router took it. A send records
each part's message reference as the modem gives it, so that a retried /send for the
same message id resumes after the parts that went rather than sending them twice, and a
report's TP-MR (one octet, reused every 256 sends) finds the external id it stands for.

Every change is written to a new file, flushed to disk and renamed over the old one, so a
crash leaves the old state or the new, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: Sends remembered for idempotency: a router retries within minutes, never 1,000 sends later.
SENT_KEPT = 1000


class Spool:
    """The bridge's durable state: inbound and report posts in flight, and sends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        state = json.loads(path.read_text()) if path.exists() else {}
        #: Messages read from the SIM, by their stable id, until the router answered 2xx.
        self.inbound: dict[str, dict[str, Any]] = state.get("inbound", {})
        #: Status reports by "<external id>:<status>", until the router answered 2xx.
        self.reports: dict[str, dict[str, Any]] = state.get("reports", {})
        #: Per message id: its concatenation reference, part count and each sent part's id.
        self.sent: dict[str, dict[str, Any]] = state.get("sent", {})
        #: The external id each TP-MR stands for now.
        self.by_reference: dict[str, str] = state.get("by_reference", {})
        self.counter: int = state.get("counter", 0)

    def save(self) -> None:
        """Write the state durably: a new file, fsynced, renamed over the old."""
        state = {"inbound": self.inbound, "reports": self.reports, "sent": self.sent,
                 "by_reference": self.by_reference, "counter": self.counter}
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w") as file:
            json.dump(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)

    def keep_inbound(self, message_id: str, payload: dict[str, Any]) -> bool:
        """Keep a message to post; False when it is kept already."""
        if message_id in self.inbound:
            return False
        self.inbound[message_id] = payload
        self.save()
        return True

    def drop_inbound(self, message_id: str) -> None:
        if self.inbound.pop(message_id, None) is not None:
            self.save()

    def keep_report(self, payload: dict[str, Any]) -> str:
        """Keep a report to post; its key, to drop it by once posted."""
        key = f"{payload['reference']}:{payload['status']}"
        self.reports[key] = payload
        self.save()
        return key

    def drop_report(self, key: str) -> None:
        if self.reports.pop(key, None) is not None:
            self.save()

    def sending(self, message_id: str, concat_reference: int, total: int) -> dict[str, Any]:
        """The record of a send: the one kept from an earlier attempt, or a new one."""
        record = self.sent.get(message_id)
        if record is None or record["total"] != total:
            record = {"concat": concat_reference, "total": total, "ids": []}
            self.sent[message_id] = record
            while len(self.sent) > SENT_KEPT:
                del self.sent[next(iter(self.sent))]
            self.save()
        return record

    def part_sent(self, record: dict[str, Any], reference: int) -> str:
        """Note that the modem took the record's next part as TP-MR `reference`; the
        part's external id, unique however often the reference comes round again."""
        self.counter += 1
        external_id = f"{reference}-{self.counter}"
        record["ids"].append(external_id)
        self.by_reference[str(reference)] = external_id
        self.save()
        return external_id

    def external_id(self, reference: int) -> str | None:
        """The external id of the last part sent as TP-MR `reference`."""
        return self.by_reference.get(str(reference))
