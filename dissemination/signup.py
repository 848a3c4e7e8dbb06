"""Sign-up with double opt-in and the preference page, served by `dissemination web`.

    GET  /aanmelden/<list>       a Dutch form (plain HTML, no JavaScript; a website can link to it
                                 or embed it), with a honeypot field for bots
    POST /aanmelden/<list>       records a *pending* subscription (consent source, time, the
                                 client's address as request origin) and mails a signed link;
                                 rate-limited per address and per client
    GET  /bevestigen/<token>     a page with one button (mail scanners open links: a GET changes nothing)
    POST /bevestigen/<token>     the subscription becomes active (confirmation time recorded)
    GET  /voorkeuren/<token>     the subscriber's lists, to change, or unsubscribe from all
    POST /voorkeuren/<token>     leaving a list takes effect at once; joining one (again) takes a
                                 new confirmation by mail

Nobody is subscribed without confirming, and an unsubscribed person comes back only by confirming
again. The answers never say whether an address was already known.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Callable
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dissemination.ledger import Ledger
from dissemination.ledger.deliveries import Deliveries
from dissemination.ledger.subscribers import Subscribers
from dissemination.publish.tokens import BadToken, Signer, personal_token, read_personal, verify_personal

if TYPE_CHECKING:
    from dissemination.load.readers import ChannelsFile

UTC = dt.timezone.utc
_EMAIL = re.compile(r"^[^@\s<>(),;:\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
CONFIRM_DAYS = 7  # a confirmation link older than this is refused: the person asks again
Send = Callable[[EmailMessage], None]


class RateLimit:
    """At most `limit` requests per key in a sliding `window` (seconds), in this process's memory:
    enough against a bot or a person mail-bombing someone else's address through the form."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.seen: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self.lock:
            times = self.seen.setdefault(key, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            if len(self.seen) > 100_000:  # never grow without bound
                self.seen = {k: v for k, v in self.seen.items() if v and v[-1] > now - self.window}
            return True


@dataclass
class SignupSettings:
    lists: dict[str, str]  # list (audience) id -> its name as people see it
    base_url: str  # the public address of `dissemination web` (the channel's web_url)
    sender: str  # From of the confirmation mail
    sender_name: str | None
    send: Send  # hands one confirmation mail to the relay (or the outbox)
    per_address: RateLimit = field(default_factory=lambda: RateLimit(3, 3600))
    per_client: RateLimit = field(default_factory=lambda: RateLimit(20, 3600))


class _Fields(dict):
    def getlist(self, key: str) -> list[str]:
        return self.get(f"{key}[]", [])


def _form(request: Request) -> _Fields:
    """The posted form (application/x-www-form-urlencoded, what a plain HTML form sends), read
    with the standard library: no multipart parser needed for a few short fields."""
    import anyio.from_thread  # handlers run in a worker thread; the body is read on the event loop

    body = anyio.from_thread.run(request.body)[:20_000]
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    fields = _Fields({k: v[0] for k, v in parsed.items()})
    fields.update({f"{k}[]": v for k, v in parsed.items()})
    return fields


def _day(now: dt.datetime) -> int:
    return (now.date() - dt.date(1970, 1, 1)).days


def signup_routes(ledger: Ledger, signer: Signer, settings: SignupSettings, page: Callable[..., Response],
                  clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC)) -> list[Route]:
    people = Subscribers(ledger)
    base = settings.base_url.rstrip("/")

    def list_name(list_id: str) -> str:
        return escape(settings.lists.get(list_id, list_id))

    def form(list_id: str, message: str = "", email: str = "", name: str = "", status: int = 200) -> Response:
        note = f'<p class="fout" role="alert">{message}</p>' if message else ""
        return page(f"Aanmelden: {settings.lists[list_id]}", f"""{note}
<form method="post" action="/aanmelden/{escape(list_id)}">
<p><label for="naam">Naam (niet verplicht)</label><br><input id="naam" name="naam" autocomplete="name" value="{escape(name)}"></p>
<p><label for="email">E-mailadres</label><br><input id="email" name="email" type="email" required autocomplete="email" value="{escape(email)}"></p>
<p class="hp" aria-hidden="true"><label for="website">Laat dit veld leeg</label><input id="website" name="website" tabindex="-1" autocomplete="off"></p>
<p><input id="akkoord" name="akkoord" type="checkbox" value="ja" required> <label for="akkoord">Ik wil {list_name(list_id)} per e-mail ontvangen. Afmelden kan altijd, met de link onder elke nieuwsbrief.</label></p>
<p><button type="submit">Aanmelden</button></p>
</form>
<p>U krijgt eerst een e-mail met een link om uw aanmelding te bevestigen.</p>""", status)

    def mail_confirmation(subscriber_id: int, address: str, list_id: str) -> None:
        token = personal_token(signer, "confirm", subscriber_id, address, list_id, _day(clock()))
        link = f"{base}/bevestigen/{token}"
        message = EmailMessage()
        message["From"] = Address(settings.sender_name or "", addr_spec=settings.sender)
        message["To"] = address
        message["Subject"] = f"Bevestig uw aanmelding voor {settings.lists.get(list_id, list_id)}"
        message["Date"] = format_datetime(clock())
        message["Message-ID"] = make_msgid(domain=settings.sender.rsplit("@", 1)[1])
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(
            f"Goedendag,\n\nIemand (hopelijk u) heeft dit adres aangemeld voor {settings.lists.get(list_id, list_id)}.\n"
            f"Bevestig de aanmelding met deze link (geldig {CONFIRM_DAYS} dagen):\n\n{link}\n\n"
            "Heeft u zich niet aangemeld? Dan hoeft u niets te doen: zonder bevestiging ontvangt u niets.\n")
        settings.send(message)

    def signup(request: Request) -> Response:
        list_id = request.path_params["list"]
        if list_id not in settings.lists:
            return page("Onbekende lijst", "<p>Deze nieuwsbrief bestaat niet (meer).</p>", 404)
        if request.method == "GET":
            return form(list_id)
        return _signup_post(request, list_id)

    def _signup_post(request: Request, list_id: str) -> Response:
        fields = _form(request)
        email, name = str(fields.get("email") or "").strip(), str(fields.get("naam") or "").strip()[:200]
        done = page("Bijna klaar", f"<p>We hebben een e-mail gestuurd naar het opgegeven adres. Bevestig daarin uw "
                                   f"aanmelding voor {list_name(list_id)}; zonder bevestiging ontvangt u niets.</p>")
        if fields.get("website"):
            return done  # the honeypot: a bot filled the field people cannot see; nothing is done
        if not _EMAIL.match(email) or len(email) > 320:
            return form(list_id, "Dit is geen geldig e-mailadres.", email, name, 400)
        if fields.get("akkoord") != "ja":
            return form(list_id, "Vink aan dat u de nieuwsbrief wilt ontvangen.", email, name, 400)
        client = request.client.host if request.client else "unknown"
        if not settings.per_client.allow(client) or not settings.per_address.allow(email.lower()):
            return page("Even geduld", "<p>Er zijn te veel aanmeldingen achter elkaar gedaan. Probeer het over "
                                       "een uur opnieuw.</p>", 429)
        subscriber_id, before = people.request(email, name, list_id, client, clock())
        if before != "active":
            mail_confirmation(subscriber_id, email.lower(), list_id)
        return done

    def verified(token: str, kind: str) -> tuple[int, str, str, dict[str, str]] | Response:
        try:
            claims = read_personal(token, kind)
            found = people.person(claims.subscriber_id)
            if found is None:
                raise BadToken("no such subscriber")
            verify_personal(signer, token, kind, found[0])
        except BadToken:
            return page("Ongeldige link", "<p>Deze link is niet geldig: hij is gewijzigd, onvolledig of hoort bij "
                                          "gegevens die niet meer bestaan. Er is niets veranderd.</p>", 403)
        return claims.subscriber_id, claims.list_id, found[0], found[1]

    def confirm(request: Request) -> Response:
        token = request.path_params["token"]
        found = verified(token, "confirm")
        if isinstance(found, Response):
            return found
        subscriber_id, list_id, address, lists = found
        if _day(clock()) - read_personal(token, "confirm").issued_day > CONFIRM_DAYS:
            return page("Link verlopen", f"<p>Deze bevestigingslink is ouder dan {CONFIRM_DAYS} dagen. Meld u "
                                         f'opnieuw aan via <a href="/aanmelden/{escape(list_id)}">het formulier</a>.</p>',
                        410)
        preferences = f"/voorkeuren/{personal_token(signer, 'preferences', subscriber_id, address)}"
        if request.method == "GET":
            if lists.get(list_id) == "active":
                return page("Al bevestigd", f"<p>U ontvangt {list_name(list_id)} al. "
                                            f'<a href="{preferences}">Uw voorkeuren</a></p>')
            return page("Aanmelding bevestigen", f"<p>Wilt u {list_name(list_id)} ontvangen?</p>"
                                                 '<form method="post"><button type="submit">Ja, bevestig mijn '
                                                 "aanmelding</button></form>")
        state = people.confirm(subscriber_id, list_id, clock())
        if state == "active":
            # The person confirmed by mail: an earlier unsubscribe (or bounce) no longer stands.
            Deliveries(ledger).unsuppress(address, "the subscriber (double opt-in)",
                                          f"confirmed a new subscription to {list_id}", clock())
        if state != "active":
            return page("Niets te bevestigen", "<p>Er staat geen aanmelding open om te bevestigen. Meld u opnieuw "
                                               f'aan via <a href="/aanmelden/{escape(list_id)}">het formulier</a>.</p>',
                        409)
        return page("Aanmelding bevestigd", f"<p>Welkom! U ontvangt voortaan {list_name(list_id)}.</p>"
                                            f'<p><a href="{preferences}">Uw voorkeuren</a></p>')

    def preferences(request: Request) -> Response:
        token = request.path_params["token"]
        found = verified(token, "preferences")
        if isinstance(found, Response):
            return found
        subscriber_id, _, address, lists = found
        notes = []
        if request.method == "POST":
            fields = _form(request)
            wanted = set() if fields.get("actie") == "alles" else {str(v) for v in fields.getlist("lijst")}
            leave = [x for x, state in lists.items() if state in ("active", "pending") and x not in wanted]
            if leave:
                people.unsubscribe(address, clock(), leave)
            for list_id in sorted(wanted & set(settings.lists)):
                if lists.get(list_id) != "active":  # joining (again) takes a new confirmation
                    people.request(address, None, list_id, request.client.host if request.client else None, clock())
                    mail_confirmation(subscriber_id, address, list_id)
                    notes.append(f"Bevestig {list_name(list_id)} via de link in de e-mail die we net stuurden.")
            notes.insert(0, "Uw voorkeuren zijn opgeslagen." if wanted else "U bent afgemeld voor alle nieuwsbrieven.")
            lists = (people.person(subscriber_id) or (address, {}))[1]
        rows = "".join(
            f'<p><input type="checkbox" id="l-{escape(x)}" name="lijst" value="{escape(x)}"'
            f'{" checked" if lists.get(x) == "active" else ""}> <label for="l-{escape(x)}">{list_name(x)}'
            f'{" (wacht op bevestiging)" if lists.get(x) == "pending" else ""}</label></p>'
            for x in sorted(settings.lists))
        said = "".join(f'<p class="ok" role="status">{n}</p>' for n in notes)
        masked = escape(address[:1] + "…@" + address.partition("@")[2])
        return page("Uw voorkeuren", f"""{said}<p>Nieuwsbrieven voor {masked}:</p>
<form method="post">{rows}<p><button type="submit" name="actie" value="opslaan">Opslaan</button></p></form>
<form method="post"><p><button type="submit" name="actie" value="alles">Afmelden voor alles</button></p></form>""")

    return [
        Route("/aanmelden/{list}", signup, methods=["GET", "POST"]),
        Route("/bevestigen/{token}", confirm, methods=["GET", "POST"]),
        Route("/voorkeuren/{token}", preferences, methods=["GET", "POST"]),
    ]


def preferences_link(ledger: Ledger, signer: Signer, address: str) -> str | None:
    """The path of a subscriber's preference page, or None when the address is no subscriber."""
    subscriber_id = Subscribers(ledger).id_of(address)
    return None if subscriber_id is None else f"/voorkeuren/{personal_token(signer, 'preferences', subscriber_id, address)}"


def signup_settings(root: Path, channels: ChannelsFile | None,
                    lists: Callable[[], dict[str, str]]) -> SignupSettings | None:
    """Sign-up forms for every audience (`lists`: list id -> name, read only when there is a
    channel to confirm through), confirmations sent through the first e-mail channel with a
    web_url (into outbox/<channel>/bevestigingen/ while its SMTP secrets are not set). None: no
    such channel, no forms."""
    from dissemination.publish.channels.email import EmailSettings, send_single, write_single

    found = next(((cid, c) for cid, c in (channels.channels if channels else {}).items()
                  if isinstance(c, EmailSettings) and c.web_url), None)
    if found is None:
        return None
    channel_id, config = found
    missing = [e for e in (config.username_env, config.password_env) if e and not os.environ.get(e)]
    folder = root / "outbox" / channel_id / "bevestigingen"

    def send(message: EmailMessage) -> None:
        if missing:  # no SMTP login: the confirmation goes to the outbox, as newsletters do
            write_single(folder, message)
        else:
            send_single(config, root, message)

    return SignupSettings(lists(), str(config.web_url), config.from_address, config.from_name, send)
