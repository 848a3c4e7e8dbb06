"""GET /d/<code>: a partner link. Redirects (302) to the stored target with utm_source=<partner>
and counts the click for that partner, publication and day.

Refused, and nothing counted: a code of the wrong form or any query string (400: nothing of ours
takes a target from the request, so `?url=`/`?next=` is an open-redirect attempt), an unknown code
(404), a row that does not match its code (403). HEAD requests and link scanners and preview
fetchers (mail filters, Mastodon servers fetching a link card) are redirected but not counted.
"""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from dissemination.ledger import Ledger
from dissemination.partners.links import CODE, PartnerLinks
from dissemination.publish.tokens import Signer
from dissemination.scanners import is_scanner

UTC = dt.timezone.utc
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}

def partner_routes(ledger: Ledger, signer: Signer) -> list[Route]:
    links = PartnerLinks(ledger, signer)

    def refuse(status: int) -> Response:
        return PlainTextResponse("Deze link is niet geldig.", status_code=status, headers=HEADERS)

    def follow(request: Request) -> Response:
        code = request.path_params["code"]
        if not CODE.fullmatch(code) or request.url.query:
            return refuse(400)
        try:
            link = links.resolve(code)
        except ValueError:
            return refuse(403)
        if link is None:
            return refuse(404)
        if request.method == "GET" and not is_scanner(request.headers.get("user-agent", "")):
            links.count_click(link, dt.datetime.now(UTC))
        return RedirectResponse(link.target, status_code=302, headers=HEADERS)

    # Starlette answers HEAD for a GET route through the same function.
    return [Route("/d/{code}", follow, methods=["GET"])]
