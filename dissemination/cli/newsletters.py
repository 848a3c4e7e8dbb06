"""Newsletter commands: recipients by state, the suppression list, resending, bounces, subscribers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from dissemination.cli.common import (JsonOption, State, UTC, _content_errors, _hasher, _ledger, _stakeholder_maps, err,
                                      out)



def newsletters(
    item: Annotated[Optional[str], typer.Option("--item", help="List the recipients of this item not (yet) sent, "
                                                "and who re-opened which for resending.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Newsletter items with their recipients by state (sent, suppressed, bounced, unknown, ...)."""
    from dissemination.ledger.deliveries import Deliveries

    ledger = _ledger()
    store = Deliveries(ledger)
    if item:
        rows = [r for r in store.rows(item) if r["state"] != "sent"]
        if as_json:
            out.print_json(data=[{k: r[k] for k in ("address", "state", "attempts", "detail")} for r in rows])
            return
        for r in rows:
            out.print(f"{r['state']:<10} {r['address']}  {r['detail'] or ''}", markup=False)
        out.print(f"{len(rows)} recipient(s) not sent", markup=False)
        for r in store.resends(item):
            out.print(f"re-opened {r['address']} by {r['requested_by']} at {r['requested_at']:%Y-%m-%d %H:%M} UTC "
                      f"(was unknown: {r['previous_detail'] or 'no detail recorded'})", markup=False)
        return
    found = []
    for row in ledger.items():
        counts = store.counts(row["id"])
        if counts:
            found.append({"id": row["id"], "campaign": row["campaign"], "post": row["post"],
                          "audience": row["audience"], "channel": row["channel"], "state": row["state"], **counts})
    if as_json:
        out.print_json(data=found)
        return
    for f in found:
        tally = ", ".join(f"{n} {k}" for k, n in f.items() if isinstance(n, int))
        out.print(f"{f['id']}  {f['channel']} {f['campaign']}/{f['post']} to {f['audience']} ({f['state']}): {tally}",
                  markup=False)
    if not found:
        out.print("no newsletter has been sent yet", markup=False)


def suppress(
    address: Annotated[str, typer.Argument(help="The e-mail address never to mail again.")],
    reason: Annotated[str, typer.Option(help="unsubscribed, complained or bounced.")] = "unsubscribed",
    list_id: Annotated[str, typer.Option("--list", help="The e-mail channel (list); '*' for every list.")] = "*",
) -> None:
    """Put an address on the suppression list (e.g. an unsubscribe by reply, or a complaint)."""
    from dissemination.ledger.deliveries import Deliveries

    if reason not in ("unsubscribed", "complained", "bounced"):
        err.print(f"--reason: '{reason}' is not one of unsubscribed, complained, bounced", markup=False)
        raise typer.Exit(2)
    added = Deliveries(_ledger()).suppress(address, list_id, reason, dt.datetime.now(UTC), detail="by hand")
    where = "every list" if list_id == "*" else f"list {list_id}"
    out.print(f"{address.strip().lower()}: {'suppressed' if added else 'already suppressed'} on {where} ({reason})",
              markup=False)


def unsuppress(
    address: Annotated[str, typer.Argument(help="The e-mail address to mail again.")],
    by: Annotated[str, typer.Option("--by", help="Who decides (recorded in the ledger).")],
    reason: Annotated[str, typer.Option("--reason", help="Why, e.g. 'bounced by a relay misconfiguration, see ticket 12'.")],
    list_id: Annotated[Optional[str], typer.Option("--list", help="Only this list (e-mail channel); default: every list.")] = None,
) -> None:
    """Take an address off the suppression list (e.g. wrongly suppressed as a bounce), with an
    audit row of who, when, why and what it was. It is mailed again only where it has consent."""
    from dissemination.ledger.deliveries import Deliveries

    missing = [name for name, value in (("--by", by), ("--reason", reason)) if not value.strip()]
    if missing:
        err.print(f"{' and '.join(missing)}: say who lifts the suppression and why (both are recorded)", markup=False)
        raise typer.Exit(2)
    lifted = Deliveries(_ledger()).unsuppress(address, by.strip(), reason.strip(), dt.datetime.now(UTC), list_id)
    where = f"list {list_id}" if list_id else "any list"
    if not lifted:
        err.print(f"{address.strip().lower()} is not suppressed on {where}; nothing was changed "
                  "(`dissemination newsletters --item ID` shows why a recipient was not sent)", markup=False)
        raise typer.Exit(1)
    for row in lifted:
        scope = "every list" if row["scope"] == "*" else f"list {row['scope']}"
        out.print(f"{row['address']}: no longer suppressed on {scope} (was {row['reason']}"
                  + (f": {row['detail']}" if row["detail"] else "") + ")", markup=False)


def resend_unknown(
    item: Annotated[str, typer.Argument(help="The newsletter item's id (see dissemination newsletters).")],
    by: Annotated[str, typer.Option("--by", help="Who decides to resend (recorded in the ledger).")],
    address: Annotated[Optional[list[str]], typer.Option(
        "--address", help="Only this recipient (repeat for several); default: every unknown recipient.")] = None,
) -> None:
    """Send a newsletter again to its `unknown` recipients (the connection dropped after the
    message was handed over, so it may have arrived). FIRST CHECK in the mail server's log that
    the message did not arrive: whoever is re-opened here gets it with the next publish run, a
    second copy if the first one did arrive. Consent and the suppression list still apply."""
    from dissemination.ledger.deliveries import CannotResend, Deliveries

    if not by.strip():
        err.print("--by: say who decides to resend", markup=False)
        raise typer.Exit(2)
    try:
        done = Deliveries(_ledger()).resend_unknown(item, address or [], by.strip(), dt.datetime.now(UTC))
    except CannotResend as exc:
        err.print(f"resend-unknown: {exc}", markup=False)
        raise typer.Exit(2) from None
    for reopened, why in done.reopened.items():
        out.print(f"re-opened  {reopened}  (was unknown: {why or 'no detail recorded'})", markup=False)
    for kept, reason in done.suppressed.items():
        out.print(f"not sent   {kept}  on the suppression list ({reason}); it stays unknown", markup=False)
    if not done.reopened:
        out.print(f"item {item}: nothing re-opened" + ("" if done.suppressed else "; it has no unknown recipients"),
                  markup=False)
        return
    out.print(f"item {item}: {len(done.reopened)} recipient(s) re-opened for resending by {by.strip()} (recorded in "
              "the ledger); the next `dissemination publish` sends them, checking consent and the suppression "
              "list again", markup=False)


subscribers_app = typer.Typer(help="Newsletter subscribers (personal data, kept in the ledger database, not in git).",
                              no_args_is_help=True)


def _import(rows, problems: list[str], dry_run: bool, what: str) -> None:
    from dissemination.ledger.subscribers import MissingKey, Subscribers

    if not problems:
        try:
            report = Subscribers(_ledger()).import_rows(rows, dt.datetime.now(UTC), _hasher(), dry_run)
        except MissingKey as exc:
            err.print(f"subscribers: {exc}", markup=False)
            raise typer.Exit(2) from None
        problems = report.problems
    if problems:
        for problem in problems:
            out.print(problem, markup=False)
        out.print(f"[bold red]{len(problems)} row(s) refused[/]: nothing was imported; fix or remove them and run again")
        raise typer.Exit(1)
    for kept in report.kept_unsubscribed:
        out.print(f"kept unsubscribed: {kept} (re-subscribing takes a new confirmation by the person)", markup=False)
    verb = "would add" if dry_run else "added"
    out.print(f"{what}: {verb} {len(report.added)} subscriber(s) and {report.subscribed} list subscription(s); "
              f"{report.unchanged} row(s) already in the database" + (" (dry run: nothing written)" if dry_run else ""),
              markup=False)


@subscribers_app.command("import")
def subscribers_import(
    file: Annotated[Path, typer.Argument(help="CSV: email, lists, consent_source, consent_date[, name, language, "
                                              "tracking, organisation, confirmed_at, request_origin].")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and count; write nothing.")] = False,
) -> None:
    """Add subscribers from a CSV file; every row needs its consent record (source and date).
    All rows or none: refused rows are listed as file:line."""
    from dissemination.ledger.subscribers import read_csv

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"{file}: cannot read it ({type(exc).__name__}: {exc})", markup=False)
        raise typer.Exit(2) from None
    lists = {a.id for _, parsed in _stakeholder_maps() for a in parsed.audiences}
    rows, problems = read_csv(str(file), text, lists or None)
    _import(rows, problems, dry_run, str(file))


@subscribers_app.command("import-contacts")
def subscribers_import_contacts(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count; write nothing.")] = False,
) -> None:
    """Move the e-mail contacts of the stakeholder maps (with their consent records) into the
    subscriber database, once; then delete their email, consent and tracking lines from the maps."""
    from dissemination.ledger.subscribers import contact_rows

    _import(list(contact_rows(_stakeholder_maps())), [], dry_run, "stakeholder maps")


@subscribers_app.command("export")
def subscribers_export(address: Annotated[str, typer.Argument(help="The person's e-mail address.")]) -> None:
    """Everything held about one person (AVG right of access), as JSON: subscriptions with their
    consent records, deliveries, clicks, suppressions."""
    from dissemination.ledger.subscribers import Subscribers

    held = Subscribers(_ledger()).export(address)
    if held is None:
        err.print(f"nothing is held about {address.strip().lower()}", markup=False)
        raise typer.Exit(1)
    print(json.dumps(held, indent=2, ensure_ascii=False, sort_keys=True))


@subscribers_app.command("erase")
def subscribers_erase(address: Annotated[str, typer.Argument(help="The person's e-mail address.")]) -> None:
    """Remove a person's data everywhere (AVG right to erasure). Only a keyed hash of the address
    is kept, so no import adds it again; newsletter counts stay, without the address."""
    from dissemination.ledger.subscribers import Subscribers

    hasher = _hasher()
    if hasher is None:
        err.print("subscribers erase: DISSEMINATION_UNSUBSCRIBE_SECRET is not set; it keys the hash that keeps "
                  "the erased address out of later imports (use the value `dissemination web` uses)", markup=False)
        raise typer.Exit(2)
    held = Subscribers(_ledger()).erase(address, hasher, dt.datetime.now(UTC))
    out.print(f"{address.strip().lower()}: " + ("erased everywhere; imports will refuse it" if held else
                                               "nothing was held; imports will refuse it from now on"), markup=False)


def bounces(
    channel: Annotated[Optional[str], typer.Option("--channel", help="The e-mail channel (default: every one with a "
                                                                     "bounce mailbox).")] = None,
    maildir: Annotated[Optional[Path], typer.Option("--maildir", help="Read this Maildir instead of the channel's "
                                                                      "bounce mailbox.")] = None,
) -> None:
    """Read the bounce mailbox (IMAP, or a Maildir) and apply what the reports say: hard bounces
    and complaints suppress the address, soft bounces are counted; a refusal of our sending setup
    (5.7.x) suppresses nobody and exits 1 so a person looks at it."""
    from dissemination.problems import ContentErrors
    from dissemination.publish.bouncebox import read_bounces
    from dissemination.publish.tokens import MissingSecret

    try:
        reports = read_bounces(State.root.resolve(), _ledger(), channel, maildir.resolve() if maildir else None)
    except ContentErrors as exc:
        _content_errors(exc)
    except MissingSecret as exc:
        err.print(f"bounces: {exc}", markup=False)
        raise typer.Exit(2) from None
    if not reports:
        err.print(f"no e-mail channel '{channel}' in channels.yaml" if channel else
                  "no e-mail channel has a bounce mailbox (bounce_imap_host or bounce_maildir in channels.yaml)",
                  markup=False)
        raise typer.Exit(2)
    trouble = False
    for report in reports:
        channel_id, run = report.channel, report.run
        if run is None:
            err.print(f"{channel_id}: {report.error}", markup=False)
            trouble = True
            continue
        out.print(f"{channel_id}: {run.messages} message(s) read: {len(run.hard)} hard bounce(s) suppressed, "
                  f"{len(run.soft)} soft bounce(s) ({len(run.soft_suppressed)} suppressed after "
                  f"{report.soft_bounce_limit} in a row), {len(run.complaints)} complaint(s) unsubscribed, "
                  f"{len(run.refused)} message(s) refused, {run.delays} delay(s), {run.unmatched} not ours, "
                  f"{run.ignored} not a report", markup=False)
        for address in run.hard:
            out.print(f"  bounced     {address}", markup=False)
        for address in run.complaints:
            out.print(f"  complained  {address}", markup=False)
        for line in run.sender:
            out.print(f"  [red]refused us[/]  {line}", markup=True)
        if run.sender:
            out.print(f"{channel_id}: {len(run.sender)} report(s) say the receiving server refuses our mail (5.7.x: "
                      "SPF, DKIM, DMARC or policy; see docs/deliverability.md); nobody was suppressed", markup=False)
            trouble = True
    if trouble:
        raise typer.Exit(1)
