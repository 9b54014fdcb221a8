"""A backend for the many small SMS APIs that have none of their own.

Inbound, it reads the sender and text from parameters you name. Outbound, it fills a
request template, `{identity}`, `{text}` and `{id}` (our message id) standing for each
message's values:

    "acme": {
        "ENGINE": "smsrouter.backends.http.HttpBackend",
        "identity_param": "from", "text_param": "msg", "inbound_method": "GET",
        "outbound_url": "https://api.acme.example/v1/sms",
        "outbound_json": {"to": "{identity}", "body": "{text}", "ref": "{id}"},
        "outbound_headers": {"Authorization": "Bearer ..."},
    }
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from django.core.checks import CheckMessage, Error
from django.http import HttpRequest

from smsrouter import httpclient
from smsrouter.backends.base import BaseBackend, Inbound, Outcome, form_data, require_token
from smsrouter.exceptions import BadInbound

if TYPE_CHECKING:
    from smsrouter.messages import OutgoingMessage

PLACEHOLDER = re.compile(r"\{(identity|text|id)\}")
INBOUND_METHODS = ("GET", "POST")
OUTBOUND_METHODS = ("GET", "POST", "PUT")


class HttpBackend(BaseBackend):
    options = {
        "inbound_method": str,
        "identity_param": str,
        "text_param": str,
        "external_id_param": str,
        "token": str,
        "outbound_url": str,
        "outbound_method": str,
        "outbound_params": dict,
        "outbound_json": (dict, list),
        "outbound_headers": dict,
        "outbound_auth": (list, tuple),
    }
    required_config = ("outbound_url",)

    def __init__(self, name: str, **config: Any) -> None:
        super().__init__(name, **config)
        self.inbound_methods = (self.config.get("inbound_method", "POST").upper(),)

    @classmethod
    def check_config(cls, name: str, config: dict[str, Any]) -> list[CheckMessage]:
        errors = super().check_config(name, config)
        given = {key.lower(): value for key, value in config.items()}
        for option, allowed, check_id in [("inbound_method", INBOUND_METHODS, "E060"),
                                          ("outbound_method", OUTBOUND_METHODS, "E061")]:
            value = given.get(option, "POST")
            if isinstance(value, str) and value.upper() not in allowed:
                errors.append(Error(f"Backend {name!r}: {option} {value!r} is not one of "
                                    f"{', '.join(allowed)}.", hint=f"{option!r}: 'POST'",
                                    id=f"smsrouter.{check_id}"))
        if "outbound_params" in given and "outbound_json" in given:
            errors.append(Error(f"Backend {name!r}: give outbound_params or outbound_json, "
                                "not both.", hint="outbound_params for a form or query string, "
                                "outbound_json for a JSON body.", id="smsrouter.E062"))
        url = given.get("outbound_url")
        if isinstance(url, str) and urlsplit(url).scheme not in ("http", "https"):
            errors.append(Error(f"Backend {name!r}: outbound_url {url!r} is not an http(s) URL.",
                                hint="'outbound_url': 'https://api.example.org/sms'",
                                id="smsrouter.E063"))
        template = [url, given.get("outbound_params"), given.get("outbound_json")]
        missing = {"identity", "text"} - set(PLACEHOLDER.findall(repr(template)))
        if isinstance(url, str) and missing:
            errors.append(Error(f"Backend {name!r}: the outbound request never uses "
                                f"{' or '.join(sorted('{' + m + '}' for m in missing))}.",
                                hint="Put '{identity}' and '{text}' where the API expects the "
                                "number and the text, e.g. 'outbound_params': "
                                "{'to': '{identity}', 'message': '{text}'}.",
                                id="smsrouter.E064"))
        return errors

    def check_request(self, request: HttpRequest, webhook: str) -> None:
        """The `token` option, when set, must be in the URL the API calls."""
        require_token(request.GET, self.config.get("token"))

    def parse_inbound(self, request: HttpRequest) -> Inbound:
        data = form_data(request)
        identity_param = self.config.get("identity_param", "identity")
        text_param = self.config.get("text_param", "text")
        identity = data.get(identity_param, "").strip()
        if not identity:
            raise BadInbound(identity_param, "is required")
        if text_param not in data:
            raise BadInbound(text_param, "is required (it may be empty)")
        id_param = self.config.get("external_id_param")
        external_id = data.get(id_param) if id_param else None
        return Inbound(identity=identity, text=data[text_param], external_id=external_id or None)

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Outcome]:
        """One request per message, the template filled with its values."""
        return await self.send_each(messages, self._request)

    async def _request(self, message: OutgoingMessage) -> None:
        values = {"identity": message.connection.identity, "text": message.text, "id": message.id}
        method = self.config.get("outbound_method", "POST").upper()
        url = PLACEHOLDER.sub(lambda found: quote(str(values[found[1]]), safe=""),
                              self.config["outbound_url"])
        params = fill(self.config.get("outbound_params"), values)
        as_query = method == "GET"
        auth = self.config.get("outbound_auth")
        answer = await httpclient.request(
            method, url,
            params=params if as_query else None,
            data=None if as_query else params,
            json=fill(self.config.get("outbound_json"), values),
            headers=self.config.get("outbound_headers"),
            auth=(str(auth[0]), str(auth[1])) if auth else None,
            timeout=self.config.get("timeout"),
        )
        answer.raise_for_status()


def fill(template: Any, values: dict[str, Any]) -> Any:
    """The template with placeholders replaced; a value that is only a placeholder keeps its type."""
    if isinstance(template, str):
        if (whole := PLACEHOLDER.fullmatch(template)) is not None:
            return values[whole[1]]
        return PLACEHOLDER.sub(lambda found: str(values[found[1]]), template)
    if isinstance(template, dict):
        return {key: fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, values) for value in template]
    return template
