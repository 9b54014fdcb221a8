"""The demo's own SMS commands (a keyword handler, a pattern handler), the REGISTER
dialogue (a conversation) and an app with a resource."""

from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from smsrouter import App
from smsrouter.contrib.conversations import Registration, Step
from smsrouter.contrib.handlers import KeywordHandler, PatternHandler
from smsrouter.models import Contact, Message
from smsrouter.resources import Request, Response


class JoinHandler(KeywordHandler):
    """`join <name>` registers the sender as a contact under that name."""

    keyword = "join"

    def help(self) -> None:
        self.respond("To register, send JOIN followed by your name.")

    def handle(self, text: str) -> None:
        connection = self.msg.connection
        if connection.contact_id is None:
            connection.contact = Contact.objects.create(name=text)
            connection.save(update_fields=["contact"])
        else:
            Contact.objects.filter(pk=connection.contact_id).update(name=text)
        self.respond(f"Thank you {text}, you are registered.")


class Register(Registration):
    """REGISTER asks a name and an age, then links the sender to a Contact of that name."""

    trigger = "register"
    steps = [
        Step("name", _("What is your name?")),
        Step("age", _("How old are you, {name}?"), parse=int,
             error=_("Please send your age as a number.")),
    ]
    done = _("Thanks {name}, you are registered.")


class AddHandler(PatternHandler):
    """`add 2 3` answers 5."""

    pattern = r"add\s+(-?\d+)\s*(?:\+|plus|and)?\s*(-?\d+)"

    def handle(self, first: str, second: str) -> None:
        self.respond(f"{first} + {second} = {int(first) + int(second)}")


class StatsApp(App):
    """A resource served ahead of Django: GET /res/stats/messages counts messages by status.

    It awaits the async ORM in the server's loop, holding no thread while the query runs.
    """

    label = "stats"
    resources = {"messages": "messages"}

    async def messages(self, request: Request) -> Response:
        counts = Message.objects.values("direction", "status").annotate(count=Count("pk"))
        return Response({f"{row['direction']}:{row['status']}": row["count"] async for row in counts})
