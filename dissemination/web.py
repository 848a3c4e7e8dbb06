"""`dissemination web`: the public side of newsletters (Starlette, served by uvicorn).

    GET  /afmelden/<token>  a Dutch confirmation page with one button (link scanners only GET)
    POST /afmelden/<token>  unsubscribe at once: RFC 8058 one-click (body List-Unsubscribe=One-Click)
                            or the page's button; 200 with a page, never a redirect
    GET  /klik/<token>      count the click and redirect to the link, only to URLs that were in the
                            newsletter (the target is signed); per person only with tracking consent.
                            Not counted: HEAD, scanner user agents, a personal link opened within
                            seconds of delivery, a recipient's repeat of the same link
    GET  /editie/<item>     the newsletter edition as sent, for reading in a browser ("web version")
    GET  /health            "ok", or 503 with the reasons when publishing is not alive: items
                            overdue, or `serve`'s heartbeat stale (dissemination/liveness.py)
    GET  /d/<code>          a partner's short link: redirect to its target with utm_source=<partner>,
                            counted anonymously per partner, publication and day (partners/web.py)
    GET  /kalender/         the calendar, month view (and /kalender/week), live from the content and
                            the ledger; read-only, and only when started with a calendar (`web
                            --calendar`): it is for the team, so keep it on localhost or behind the
                            proxy's authentication (README, "Calendar")

With sign-up settings it also serves the sign-up form, the confirmation link (double opt-in) and
the preference page (`dissemination/signup.py`); the unsubscribe page then links to the latter.

A tampered or unknown token is refused (403 / 400) and changes nothing. The handlers are plain
functions, so Starlette runs their ledger queries in its thread pool, off the event loop.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from dissemination.ledger import Ledger
from dissemination.ledger.deliveries import Deliveries
from dissemination.ledger.subscribers import Subscribers
from dissemination.partners.web import partner_routes
from dissemination.publish.tokens import BadToken, Signer
from dissemination.render.newsletter import UNSUBSCRIBE_PLACEHOLDER, WEB_VERSION_PLACEHOLDER
from dissemination.scanners import is_scanner
from dissemination.signup import SignupSettings, preferences_link, signup_routes

UTC = dt.timezone.utc
SCANNER_WINDOW = dt.timedelta(seconds=10)  # a personal link opened this soon after delivery: a gateway

PAGE = """<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:Arial,Helvetica,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1d2733}}
button{{font-size:1rem;padding:.6rem 1.2rem;background:#00577a;color:#fff;border:0;border-radius:4px;cursor:pointer}}
input[type=email],input[name=naam]{{font-size:1rem;padding:.4rem;width:100%;max-width:24rem;box-sizing:border-box}}
.hp{{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}}.fout{{color:#a4000f}}.ok{{color:#1b5e20}}</style>
</head><body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=escape(title), body=body), status_code=status,
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _masked(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}…@{domain}"


def create_app(ledger: Ledger, signer: Signer, list_names: dict[str, str] | None = None,
               signup: SignupSettings | None = None, calendar: Callable[[str], str] | None = None,
               clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC)) -> Starlette:
    """`signup`: also serve the sign-up form, confirmation and preference pages (`signup.py`).
    `calendar(view)` renders the calendar ("month" or "week") as a page; None: not served."""
    deliveries = Deliveries(ledger)
    names = list_names or {}

    def unsubscribe_claims(token: str) -> tuple[str, str, str] | Response:
        """(address, list, item) of a valid token, or the refusal to send back."""
        try:
            claims = signer.read_unsubscribe(token)
        except BadToken:
            return _page("Ongeldige link", "<p>Deze afmeldlink is niet geldig. Gebruik de link uit de nieuwsbrief "
                         "zelf, of antwoord op de nieuwsbrief met het verzoek u af te melden.</p>", 400)
        address = deliveries.address_for_key(claims.address_key)
        try:
            if address is None:
                raise BadToken("unknown address")
            signer.verify_unsubscribe(token, address)
        except BadToken:
            return _page("Ongeldige link", "<p>Deze afmeldlink klopt niet: hij is gewijzigd of onvolledig. "
                         "Er is niets veranderd.</p>", 403)
        return address, claims.scope, claims.item_id

    def unsubscribe(request: Request) -> Response:
        found = unsubscribe_claims(request.path_params["token"])
        if isinstance(found, Response):
            return found
        address, scope, item_id = found
        name = escape(names.get(scope, scope))
        if request.method == "POST":
            # RFC 8058: the body is List-Unsubscribe=One-Click; the page's button sends the same.
            # Either way the answer is 200 with no redirect, and the address is never mailed again.
            now = dt.datetime.now(UTC)
            deliveries.suppress(address, scope, "unsubscribed", now, item_id, "one-click unsubscribe")
            Subscribers(ledger).unsubscribe(address, now)  # coming back takes a new confirmation
            return _page("U bent afgemeld", f"<p>{escape(_masked(address))} ontvangt {name} niet meer.</p>"
                         + (f'<p>Afgemeld door een vergissing? <a href="{link}">Meld u opnieuw aan</a>.</p>'
                            if (link := preferences_link(ledger, signer, address)) and signup else
                            "<p>Afgemeld door een vergissing? Meld u opnieuw aan bij de redactie.</p>"))
        if deliveries.suppressed(address, scope):
            return _page("U bent al afgemeld", f"<p>{escape(_masked(address))} ontvangt {name} niet meer.</p>")
        link = preferences_link(ledger, signer, address) if signup else None
        return _page("Afmelden", f"<p>Wilt u {name} niet meer ontvangen op {escape(_masked(address))}?</p>"
                     '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
                     '<button type="submit">Afmelden</button></form>'
                     + (f'<p>Of kies zelf welke nieuwsbrieven u ontvangt: <a href="{link}">uw voorkeuren</a>.</p>'
                        if link else ""))

    def click(request: Request) -> Response:
        try:
            target = signer.verify_click(request.path_params["token"])
        except BadToken:
            return PlainTextResponse("Deze link is niet geldig.", status_code=400)
        # Honest clicks: a HEAD or a known link scanner is sent on but not counted, nor a personal
        # link opened within seconds of its delivery (security gateways follow every link on
        # arrival), nor a recipient's second click on the same link.
        if request.method == "GET" and not is_scanner(request.headers.get("user-agent")):
            address = deliveries.address_for_key(target.address_key) if target.address_key else None
            now = clock()
            sent = deliveries.sent_at(target.item_id, address) if address else None
            if not (sent and dt.timedelta(0) <= now - sent < SCANNER_WINDOW) and \
                    not (address and deliveries.clicked(target.item_id, target.url, address)):
                deliveries.add_click(target.item_id, target.url, address, now)
        return RedirectResponse(target.url, status_code=302, headers={"Cache-Control": "no-store",
                                                                     "Referrer-Policy": "no-referrer"})

    def edition(request: Request) -> Response:
        """A newsletter as sent, for reading in a browser: the edition's HTML from the ledger,
        with the personal unsubscribe link replaced by the sign-up page (nobody's own link)."""
        found = ledger.item_payload(request.path_params["item"])
        if found is None or "editions" not in found[1] or found[0] not in ("published", "planned", "claimed", "unknown"):
            return _page("Niet gevonden", "<p>Deze nieuwsbrief bestaat niet (meer).</p>", 404)
        audience, payload = found[2], found[1]
        own = f"/editie/{request.path_params['item']}"
        html = payload.get("html", "").replace(WEB_VERSION_PLACEHOLDER, own).replace(
            UNSUBSCRIBE_PLACEHOLDER, f"/aanmelden/{audience}" if signup else own)
        return HTMLResponse(html, headers={"Cache-Control": "public, max-age=300", "Referrer-Policy": "no-referrer"})

    def health(_: Request) -> Response:
        from dissemination.liveness import problems

        found = problems(ledger, dt.datetime.now(UTC))
        if found:
            return PlainTextResponse("\n".join(found) + "\n", status_code=503, headers={"Cache-Control": "no-store"})
        return PlainTextResponse("ok", headers={"Cache-Control": "no-store"})

    def calendar_page(request: Request) -> Response:
        assert calendar is not None
        page = calendar("week" if request.url.path.rstrip("/").endswith("/week") else "month")
        return HTMLResponse(page, headers={
            "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex",
            # the page is self-contained: its own inline style and filter script, nothing else
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                       "script-src 'unsafe-inline'; img-src data:; form-action 'none'"})

    routes = [
        *(signup_routes(ledger, signer, signup, _page) if signup else []),
        Route("/afmelden/{token}", unsubscribe, methods=["GET", "POST"]),
        Route("/klik/{token}", click, methods=["GET"]),
        Route("/editie/{item}", edition, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    # Partner links (issue 16): their own module, so this file stays about newsletters.
    routes += partner_routes(ledger, signer)
    if calendar is not None:
        routes += [Route("/kalender/", calendar_page, methods=["GET"]),
                   Route("/kalender/week", calendar_page, methods=["GET"])]
    return Starlette(routes=routes)
