"""GET /d/<code>: a partner link. Redirects (302) to the stored target with utm_source=<partner>
and counts the click for that partner, publication and day.

Refused, and nothing counted: a code of the wrong form or any query string (400: nothing of ours
takes a target from the request, so `?url=`/`?next=` is an open-redirect attempt), an unknown code
(404), a row that does not match its code (403). HEAD requests and link scanners and preview
fetchers (mail filters, Mastodon servers fetching a link card) are redirected but not counted.
"""

from __future__ import annotations

import datetime as dt
import re

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from dissemination.ledger import Ledger
from dissemination.partners.links import CODE, PartnerLinks
from dissemination.publish.tokens import Signer

UTC = dt.timezone.utc
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}

# Automated fetchers that follow links without a person: mail security filters, search and
# social crawlers, and the fediverse's link-card fetchers (every server that shows a partner's
# post fetches its link once). An empty user agent is no browser either.
SCANNER = re.compile(
    r"bot\b|bot/|crawler|spider|preview|scanner|safelinks|barracuda|proofpoint|mimecast|mailscanner|"
    r"facebookexternalhit|slackbot|linkedinbot|twitterbot|whatsapp|skypeuripreview|"
    r"mastodon/|pleroma|akkoma|misskey|http\.rb|python-|curl/|wget/|go-http-client|java/|okhttp",
    re.IGNORECASE)


def is_scanner(user_agent: str) -> bool:
    return not user_agent.strip() or bool(SCANNER.search(user_agent))


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
