"""`dissemination web`: the public side of newsletters (Starlette, served by uvicorn).

    GET  /afmelden/<token>  a Dutch confirmation page with one button (link scanners only GET)
    POST /afmelden/<token>  unsubscribe at once: RFC 8058 one-click (body List-Unsubscribe=One-Click)
                            or the page's button; 200 with a page, never a redirect
    GET  /klik/<token>      count the click and redirect to the link, only to URLs that were in the
                            newsletter (the target is signed); per person only with tracking consent
    GET  /health            "ok"
    GET  /d/<code>          a partner's short link: redirect to its target with utm_source=<partner>,
                            counted anonymously per partner, publication and day (partners/web.py)
    GET  /kalender/         the calendar, month view (and /kalender/week), live from the content and
                            the ledger; read-only, and only when started with a calendar (`web
                            --calendar`): it is for the team, so keep it on localhost or behind the
                            proxy's authentication (README, "Calendar")

A tampered or unknown token is refused (403 / 400) and changes nothing. The handlers are plain
functions, so Starlette runs their ledger queries in its thread pool, off the event loop.
"""

from __future__ import annotations

import datetime as dt
from html import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from collections.abc import Callable

from dissemination.ledger import Ledger
from dissemination.ledger.deliveries import Deliveries
from dissemination.partners.web import partner_routes
from dissemination.publish.tokens import BadToken, Signer

UTC = dt.timezone.utc

PAGE = """<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:Arial,Helvetica,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1d2733}}
button{{font-size:1rem;padding:.6rem 1.2rem;background:#00577a;color:#fff;border:0;border-radius:4px;cursor:pointer}}</style>
</head><body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=escape(title), body=body), status_code=status,
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _masked(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}…@{domain}"


def create_app(ledger: Ledger, signer: Signer, list_names: dict[str, str] | None = None,
               calendar: Callable[[str], str] | None = None) -> Starlette:
    """`calendar(view)` renders the calendar ("month" or "week") as a page; None: not served."""
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
            deliveries.suppress(address, scope, "unsubscribed", dt.datetime.now(UTC), item_id,
                                "one-click unsubscribe")
            return _page("U bent afgemeld", f"<p>{escape(_masked(address))} ontvangt {name} niet meer.</p>"
                         "<p>Afgemeld door een vergissing? Meld u opnieuw aan bij de redactie.</p>")
        if deliveries.suppressed(address, scope):
            return _page("U bent al afgemeld", f"<p>{escape(_masked(address))} ontvangt {name} niet meer.</p>")
        return _page("Afmelden", f"<p>Wilt u {name} niet meer ontvangen op {escape(_masked(address))}?</p>"
                     '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
                     '<button type="submit">Afmelden</button></form>')

    def click(request: Request) -> Response:
        try:
            target = signer.verify_click(request.path_params["token"])
        except BadToken:
            return PlainTextResponse("Deze link is niet geldig.", status_code=400)
        address = deliveries.address_for_key(target.address_key) if target.address_key else None
        deliveries.add_click(target.item_id, target.url, address, dt.datetime.now(UTC))
        return RedirectResponse(target.url, status_code=302, headers={"Cache-Control": "no-store",
                                                                     "Referrer-Policy": "no-referrer"})

    def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    def calendar_page(request: Request) -> Response:
        assert calendar is not None
        page = calendar("week" if request.url.path.rstrip("/").endswith("/week") else "month")
        return HTMLResponse(page, headers={
            "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex",
            # the page is self-contained: its own inline style and filter script, nothing else
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                       "script-src 'unsafe-inline'; img-src data:; form-action 'none'"})

    routes = [
        Route("/afmelden/{token}", unsubscribe, methods=["GET", "POST"]),
        Route("/klik/{token}", click, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    # Partner links (issue 16): their own module, so this file stays about newsletters.
    routes += partner_routes(ledger, signer)
    if calendar is not None:
        routes += [Route("/kalender/", calendar_page, methods=["GET"]),
                   Route("/kalender/week", calendar_page, methods=["GET"])]
    return Starlette(routes=routes)
