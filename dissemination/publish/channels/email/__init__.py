"""The e-mail channel: newsletters to an audience's subscribers, exactly once per recipient.

This module is the kind (settings, capabilities, how it opens); the sending itself, which needs
the ledger, is in `sending` (imported when a channel is opened, not when channels.yaml is read).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field

from dissemination.load import models as m
from dissemination.publish.channels.base import Capabilities, Channel, Metric, OpenedChannel
from dissemination.publish.credentials import CredentialStore

if TYPE_CHECKING:
    from email.message import EmailMessage

GMAIL_CLIP_BYTES = 102_400  # Gmail clips HTML bodies over ~102 KB, hiding the unsubscribe link

# What `check` and the e-mail channel's preflight say when an e-mail channel has no web_url.
WEB_URL_HINT = "set web_url to the public address of `dissemination web`; every newsletter needs a working unsubscribe link"


class EmailSettings(m.ChannelSettings):
    kind: Literal["email"]
    host: m.NonEmptyText
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username_env: m.EnvName | None = None
    password_env: m.EnvName | None = None
    from_address: m.Email
    from_name: m.DisplayName | None = None
    reply_to: m.Email | None = None
    rate_per_minute: Annotated[int, Field(ge=1)] = 600
    # SMTP connections sending at once (each reused for a whole batch).
    connections: Annotated[int, Field(ge=1, le=16)] = 1
    timeout: m.Duration = dt.timedelta(seconds=30)
    # A CA bundle (PEM, relative to the content root) for a relay whose certificate a private CA
    # signed; default: the system's CAs. The certificate is always verified.
    tls_ca_file: m.NonEmptyText | None = None
    # Public address of `dissemination web`: unsubscribe and click links point there.
    web_url: m.AsciiUrl | None = None
    # The list as mail clients show it (List-Id); defaults: the description and <channel>.<sender domain>.
    list_name: m.DisplayName | None = None
    list_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z0-9-]+$")] | None = None
    # Where the List-Unsubscribe mailto: goes (handled by hand: `dissemination suppress`); default reply_to or from.
    unsubscribe_mailbox: m.Email | None = None
    # Links go through `dissemination web` and are counted anonymously; per person only for
    # contacts with `tracking: true`.
    track_clicks: bool = True
    # How long after its slot an edition may still reach a recipient the server deferred (4xx)
    # or an operator re-opened; later (or once the list's next edition went out) it is not sent.
    edition_expires_after: m.Duration = dt.timedelta(days=3)
    # Editions in a row a recipient's server did not accept (4xx until expiry, 5.2.2 mailbox
    # full) before the address is suppressed as bounced.
    soft_bounce_limit: Annotated[int, Field(ge=1, le=100)] = 3
    # DKIM signing by the sender itself, for a relay that does not sign (see docs/deliverability.md):
    # the selector, the signing domain (default: from_address's) and the environment variable
    # holding the private key (PEM). From, To, Subject, Date, Message-ID, List-Id and the
    # List-Unsubscribe headers are signed (RFC 8058 one-click counts only when they are).
    dkim_selector: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")] | None = None
    dkim_domain: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z0-9-]+$")] | None = None
    dkim_key_env: m.EnvName | None = None
    # How long a click keeps the address of a person who consented to per-person tracking.
    click_retention: m.Duration = dt.timedelta(days=180)
    # Bounces that arrive later, by mail: each message's envelope sender is
    # `<local>+<token>@<domain>` of this address (VERP), so a report names its newsletter and
    # recipient. `dissemination bounces` reads the mailbox it lands in: over IMAP, or a Maildir.
    bounce_address: m.Email | None = None
    bounce_imap_host: m.NonEmptyText | None = None
    bounce_imap_port: Annotated[int, Field(ge=1, le=65535)] = 993
    bounce_imap_security: Literal["ssl", "starttls", "none"] = "ssl"
    bounce_imap_folder: m.NonEmptyText = "INBOX"
    bounce_username_env: m.EnvName | None = None
    bounce_password_env: m.EnvName | None = None
    bounce_maildir: m.NonEmptyText | None = None  # relative to the content root, or absolute

    def secret_envs(self) -> list[str]:
        return [n for n in (self.username_env, self.password_env) if n]

    def paths(self) -> dict[str, str]:
        return {"tls_ca_file": self.tls_ca_file} if self.tls_ca_file else {}

    def problems(self, channel_id: str) -> list[tuple[tuple[str, ...], str, str, Literal["error", "warning"]]]:
        if self.web_url is None:
            # A warning, not an error: the newsletters still go to the outbox for review.
            return [((channel_id,), f"e-mail channel '{channel_id}' has no web_url, so no e-mail is sent (its "
                                    f"newsletters are written to outbox/{channel_id}/)", WEB_URL_HINT, "warning")]
        parts = urlsplit(str(self.web_url))
        if parts.scheme != "https" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            # RFC 8058: one-click unsubscribe (List-Unsubscribe-Post) needs an HTTPS URI; mail
            # providers ignore the header otherwise and the links travel in clear text.
            return [((channel_id, "web_url"), f"e-mail channel '{channel_id}': web_url {self.web_url} is not HTTPS",
                     "serve `dissemination web` behind HTTPS and write web_url as https://…; only localhost may use http",
                     "error")]
        return []


class EmailChannel(Channel):
    """The kind; `sending.EmailSender` is the adapter that `open` makes."""

    kind = "email"
    settings = EmailSettings
    metrics = (Metric("sent", "reach"), Metric("rejected", "rejected"), Metric("unsubscribed", "unsubscribed"),
               Metric("clicks", "clicks"))

    @classmethod
    def capabilities_of(cls, config: m.ChannelSettings) -> Capabilities:
        assert isinstance(config, EmailSettings)
        return Capabilities(
            "email", "E-mail", medium="email", markup="html", unit="bytes", max_images=50,
            max_html_bytes=GMAIL_CLIP_BYTES, newsletter=True, rate_per_minute=config.rate_per_minute,
            idempotent=True)  # per-recipient rows: nobody gets an edition twice

    @classmethod
    def open(cls, channel_id: str, config: m.ChannelSettings, root: Path,
             credentials: CredentialStore | None = None) -> OpenedChannel:
        from dissemination.publish.channels.email.sending import EmailSender, OutboxTransport
        from dissemination.publish.tokens import SECRET_ENV

        assert isinstance(config, EmailSettings)
        missing = [n for n in config.secret_envs() if not os.environ.get(n)]
        if not os.environ.get(SECRET_ENV):
            missing = [*missing, SECRET_ENV]
        if not missing and config.web_url:
            return OpenedChannel(EmailSender(channel_id, config, root), None)
        # Without SMTP credentials, the link secret or web_url: the same recipients, consent,
        # suppression and ledger rows, but one .eml file per recipient instead of SMTP.
        folder = root / "outbox" / channel_id
        lacking = ", ".join(missing) + (" not set" if missing else "") + \
            (" and " if missing and not config.web_url else "") + ("no web_url in channels.yaml" if not config.web_url else "")
        note = f"{channel_id}: {lacking}, so no e-mail is sent; writing one message per recipient to outbox/{channel_id}/"
        return OpenedChannel(EmailSender(channel_id, config, root, transport=OutboxTransport(folder)), note)


def send_single(config: EmailSettings, root: Path, message: EmailMessage) -> None:
    """One mail outside a newsletter (a sign-up confirmation) through the channel's relay, with
    the same TLS and login settings. Raises PublishError when the relay does not take it."""
    from dissemination.publish.channels.email import sending

    sending.send_single(config, root, message)


def write_single(folder: Path, message: EmailMessage) -> Path:
    """Without SMTP settings: the mail as a file, as the outbox does for newsletters."""
    from dissemination.publish.channels.email import sending

    return sending.write_single(folder, message)
