"""Long-lived threads and workers replace connections that an error left unusable."""

from smsrouter import dbhealth


class FakeConnection:
    def __init__(self, errors_occurred: bool, usable: bool) -> None:
        self.errors_occurred, self.usable, self.closed = errors_occurred, usable, False

    def is_usable(self) -> bool:
        return self.usable

    def close(self) -> None:
        self.closed = True


def test_only_a_connection_that_had_an_error_and_is_unusable_is_closed(monkeypatch):
    broken = FakeConnection(errors_occurred=True, usable=False)
    recovered = FakeConnection(errors_occurred=True, usable=True)
    fine = FakeConnection(errors_occurred=False, usable=False)  # not even asked
    monkeypatch.setattr(dbhealth.connections, "all", lambda initialized_only: [broken, recovered, fine])
    dbhealth.drop_broken_connections()
    assert (broken.closed, recovered.closed, fine.closed) == (True, False, False)
    assert not broken.errors_occurred and not recovered.errors_occurred
