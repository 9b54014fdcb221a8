"""`echo <text>` answers `<text>`, and `ping` answers `pong`: proof that the round trip works."""

from smsrouter.contrib.handlers import keyword_pattern
from smsrouter.messages import IncomingMessage
from smsrouter.router import App

HELP = "Send ECHO followed by some text, and it comes back to you."


class EchoApp(App):
    echo = keyword_pattern("echo")
    ping = keyword_pattern("ping")

    def handle(self, msg: IncomingMessage) -> bool:
        if found := self.echo.match(msg.text):
            msg.respond(found.group("rest") or HELP)
            return True
        if self.ping.match(msg.text):
            msg.respond("pong")
            return True
        return False
