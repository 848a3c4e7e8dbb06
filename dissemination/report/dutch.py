"""The report speaks Dutch: every reason the ledger, the channels and the collector record (in
English, for operators and logs) mapped to a Dutch sentence for the stuurgroep.

`EXAMPLES` holds one English message of each kind the code produces; the report test seeds them
and checks that none of them, nor any English sentence, reaches the page. A message no rule knows
is not shown in English either: it reads as a technical note pointing to `dissemination status`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

UNKNOWN = "technische melding; zie `dissemination status`"

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _rule(pattern: str, dutch: str | Callable[[re.Match[str]], str]) -> _Rule:
    return re.compile(pattern, re.S), (dutch if callable(dutch) else (lambda m, text=dutch: m.expand(text)))


_APPROVE_AGAIN = "wacht op nieuwe goedkeuring"
RULES: list[_Rule] = [
    # the ledger
    _rule(r"^more than the late tolerance past its slot", "te laat: later dan de toegestane marge na het "
          "geplande tijdstip, dus niet alsnog geplaatst"),
    _rule(r"^no longer in the approved plan", "niet meer in het goedgekeurde plan"),
    _rule(r"^(?:campaign )?changed since approval", f"campagne gewijzigd na goedkeuring; {_APPROVE_AGAIN}"),
    _rule(r"^approved without a content digest", f"goedgekeurd zonder vingerafdruk van de inhoud; {_APPROVE_AGAIN}"),
    _rule(r"^approved before approval covered", "goedgekeurd voordat de goedkeuring ook kennisitems, sjablonen en "
          f"afbeeldingen omvatte; {_APPROVE_AGAIN}"),
    _rule(r"^(\S+(?:, \S+)*) changed since approval(?: and (\S+(?:, \S+)*) not covered by the approval)?",
          lambda m: f"{m.group(1)} gewijzigd na goedkeuring" + (
              f" en {m.group(2)} niet goedgekeurd" if m.group(2) else "") + f"; {_APPROVE_AGAIN}"),
    _rule(r"^(\S+(?:, \S+)*) not covered by the approval", rf"\1 valt niet onder de goedkeuring; {_APPROVE_AGAIN}"),
    _rule(r"^channel '([^']+)' is no longer (?:configured|in channels\.yaml)", r"kanaal \1 staat niet meer in "
          "channels.yaml"),
    # publishing
    _rule(r"^gave up after (\d+) attempts", r"opgegeven na \1 pogingen"),
    _rule(r"^LinkedIn refused (?:the post|the image|\S+)?.*?HTTP (\d+)", r"geweigerd door LinkedIn (HTTP \1)"),
    _rule(r"^LinkedIn refuses this text as a duplicate", "door LinkedIn geweigerd als herhaling van een eerder "
          "bericht"),
    _rule(r"^LinkedIn answered (\d+)", r"LinkedIn gaf een foutmelding (HTTP \1)"),
    _rule(r"^LinkedIn did not answer in time", "LinkedIn antwoordde niet op tijd"),
    _rule(r"refused the status", "geweigerd door de Mastodon-server"),
    _rule(r"^rate limited", "tijdelijk te veel verzoeken; later opnieuw geprobeerd"),
    _rule(r"^cannot reach |^no answer from ", "kanaal niet bereikbaar"),
    _rule(r"^image file '([^']+)' not found", r"afbeelding \1 niet gevonden"),
    _rule(r"no unsubscribe link", "nieuwsbrief zonder afmeldlink: niet verstuurd"),
    _rule(r"^(\d+) of (\d+) recipients not reached yet", r"\1 van de \2 ontvangers nog niet bereikt"),
    _rule(r"^credential refused|was refused|^the token", "de koppeling met het kanaal werd geweigerd "
          "(inloggegevens verlopen of ingetrokken)"),
    # measuring
    _rule(r"^outbox: nothing was published", "niet echt gepubliceerd: alleen in de outbox gezet (geen "
          "inloggegevens ingesteld)"),
    _rule(r"^needs the (\S+) scope", r"LinkedIn geeft dit cijfer alleen met de toestemming \1, die de koppeling "
          "mist"),
    _rule(r"^no statistics for this post", "LinkedIn heeft geen cijfers voor dit bericht (bewaart ze 12 maanden)"),
    _rule(r"^deleted: the server no longer returns this status", "bericht verwijderd: de server geeft het niet meer"),
    _rule(r"^(\w+) not reported", r"het kanaal meldt \1 niet"),
    _rule(r"^reading failed", "uitlezen mislukt"),
    _rule(r"^not read: ", "niet uitgelezen: het kanaal heeft geen inloggegevens"),
    _rule(r"^no ledger bound", "niet uitgelezen"),
    _rule(r"^LinkedIn's API reports how often a post was shared", "LinkedIn meldt hoe vaak een bericht is gedeeld, "
          "maar niet door wie: delen door partners is niet te tellen"),
    _rule(r"refused the read", "de server weigerde het uitlezen"),
]

# One English message of each kind the code writes into the ledger (see RULES), for the tests.
EXAMPLES = [
    "more than the late tolerance past its slot; not posted late",
    "no longer in the approved plan",
    "changed since approval; approve again: dissemination approve campaigns/x.md --by NAME",
    "approved without a content digest; run: dissemination approve campaigns/x.md --by NAME",
    "approved before approval covered the knowledge items, templates and images its posts use; approve again: x",
    "knowledge/x.md changed since approval; approve again: dissemination approve campaigns/x.md --by NAME",
    "templates/a.j2 not covered by the approval; approve again: dissemination approve campaigns/x.md --by NAME",
    "channel 'x' is no longer configured",
    "gave up after 8 attempts: LinkedIn answered 500",
    "LinkedIn refused the post: HTTP 422 UNPROCESSABLE: field is required",
    "LinkedIn refuses this text as a duplicate of an earlier post (x); not posted again",
    "LinkedIn did not answer in time; the post may exist, the retry will tell",
    "https://mastodon.example refused the status: Validation failed: Text is too long",
    "rate limited by LinkedIn: slow down",
    "cannot reach https://api.linkedin.com: ConnectError",
    "image file 'beeld/x.png' not found (run `dissemination check`)",
    "the newsletter has no unsubscribe link in both parts ({{ unsubscribe_url }} in the templates)",
    "3 of 10 recipients not reached yet (deferred); will retry",
    "outbox: nothing was published",
    "needs the rw_organization_admin scope (LinkedIn: 403 ACCESS_DENIED)",
    "no statistics for this post (LinkedIn keeps them for 12 months)",
    "deleted: the server no longer returns this status",
    "quotes_count not reported by this server",
    "reading failed: KeyError",
    "not read: DISSEMINATION_LINKEDIN_TOKEN not set",
    "LinkedIn's API reports how often a post was shared (shareCount), not by whom: reshares by a partner cannot be counted",
    "https://mastodon.example refused the read of boosts: HTTP 500",
    "something nobody foresaw happened",
]


def dutch(reason: str | None) -> str | None:
    """The Dutch for a recorded reason; reasons already in Dutch (the report's own) pass."""
    if not reason:
        return reason
    return _dutch(reason)


@lru_cache(maxsize=4096)  # a year's report asks for the same few reasons thousands of times
def _dutch(reason: str) -> str:
    for pattern, make in RULES:
        match = pattern.search(reason)
        if match:
            return make(match)
    if _looks_dutch(reason):
        return reason
    return UNKNOWN


_DUTCH_WORDS = re.compile(r"\b(nog|niet|geen|meldt|gemeten|van|het|een|publicatie|periode|de)\b")


def _looks_dutch(text: str) -> bool:
    return bool(_DUTCH_WORDS.search(text)) and not re.search(r"\b(the|was|not|has|is)\b", text)
