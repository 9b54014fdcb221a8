"""The shared HTTP client: one pooled session per loop, closed with its loop; answers judged."""

import asyncio
import socket

import pytest

from smsrouter import httpclient
from smsrouter.exceptions import PermanentSendError, TemporarySendError


def run(coro):
    return asyncio.run(coro)


def test_a_request_reaches_the_gateway_with_its_params(gateway):
    gateway.answer(202, "0: Accepted for delivery")
    answer = run(httpclient.request("GET", f"{gateway.url}/cgi-bin/sendsms",
                              params={"to": "+255700000001", "coding": 2}))
    assert (answer.status, answer.text) == (202, "0: Accepted for delivery")
    assert gateway.requests[0].query == {"to": ["+255700000001"], "coding": ["2"]}


@pytest.mark.parametrize(
    ("status", "error"),
    [(503, TemporarySendError), (500, TemporarySendError), (429, TemporarySendError),
     (400, PermanentSendError), (401, PermanentSendError), (404, PermanentSendError)],
)
def test_status_codes_say_whether_to_retry(gateway, status, error):
    gateway.answer(status, "Temporal failure, try again later.")
    answer = run(httpclient.request("GET", f"{gateway.url}/send?password=secret"))
    with pytest.raises(error, match=f"answered {status}: Temporal failure") as raised:
        answer.raise_for_status()
    assert "secret" not in str(raised.value)


def test_2xx_and_3xx_pass(gateway):
    gateway.answer(202)
    run(httpclient.request("GET", gateway.url)).raise_for_status()


def test_an_unreachable_gateway_is_temporary_and_hides_credentials():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TemporarySendError, match=f"GET http://127.0.0.1:{port}/send failed") as raised:
        run(httpclient.request("GET", f"http://user:pw@127.0.0.1:{port}/send", params={"password": "pw"}))
    assert "pw" not in str(raised.value)


def test_one_session_per_loop_closed_when_the_loop_shuts_down(gateway):
    async def sessions():
        first = await httpclient._session()
        await httpclient.request("GET", gateway.url)
        return first, await httpclient._session()

    first, again = run(sessions())
    assert first is again
    assert first.closed
    other, _ = run(sessions())
    assert other is not first


def test_a_request_gives_up_after_its_timeout():
    """A gateway that holds the request past the backend's `timeout` is a temporary failure."""
    with socket.socket() as silent:  # accepts connections into its backlog, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(TemporarySendError, match="TimeoutError"):
            run(httpclient.request("GET", f"http://127.0.0.1:{port}/send", timeout=0.2))


def test_a_timeout_that_is_not_positive_fails_the_check():
    from tests.backends import RecordingBackend

    (error,) = RecordingBackend.check_config("gw", {"timeout": 0})
    assert error.id == "smsrouter.E080"
