"""The ledger's tables. Every publication passes through `items`; nothing is sent without a row.

All times are stored as naive UTC: SQLite has no time zones, and one rule for both backends avoids
mixed comparisons. The slot's own zone is kept beside it for display and for re-planning.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

STATES = ("planned", "claimed", "published", "failed", "unknown", "waiting", "missed", "held", "cancelled")
# Items in these states are never touched by re-planning: the outside world has seen them.
# `waiting`: the outcome is unknown and could not be found out (read-back failed); it waits for a
# person (`dissemination resolve`), never for a blind repost.
SETTLED = ("published", "failed", "missed", "waiting")
IN_FLIGHT = ("claimed", "unknown")

items = Table(
    "items",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("campaign", String(64), nullable=False),
    Column("post", String(64), nullable=False),
    Column("audience", String(64), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("occurrence", Integer, nullable=False),
    Column("slot_utc", DateTime, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("knowledge", String(64)),
    Column("state", String(16), nullable=False),
    Column("reason", Text),
    Column("payload", Text, nullable=False),
    Column("payload_digest", String(64), nullable=False),
    Column("lease_owner", String(128)),
    Column("lease_expires", DateTime),
    Column("first_claimed_at", DateTime),
    Column("attempt_count", Integer, nullable=False, default=0),
    Column("planned_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("published_at", DateTime),
    Index("ix_items_state_slot", "state", "slot_utc"),
    Index("ix_items_campaign", "campaign"),
)

# The audiences an item serves: one row for an item of one audience, one per audience for a
# social post they share (audience '*' in `items`, which stays part of its identity).
item_audiences = Table(
    "item_audiences",
    metadata,
    Column("item_id", String(32), ForeignKey("items.id"), primary_key=True),
    Column("audience", String(64), primary_key=True),
    Index("ix_item_audiences_audience", "audience"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", String(32), ForeignKey("items.id"), nullable=False, index=True),
    Column("worker", String(128), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    # started | published | retry | failed | unknown | waiting | resolved | abandoned (its run crashed)
    Column("outcome", String(16), nullable=False),
    Column("detail", Text),
)

receipts = Table(
    "receipts",
    metadata,
    Column("item_id", String(32), ForeignKey("items.id"), primary_key=True),
    Column("remote_id", String(255), nullable=False),
    Column("url", Text),
    Column("published_at", DateTime, nullable=False),
)

# What the channel's server said about its limits at the last preflight (Mastodon's instance
# configuration): `check`, rendering and `preview` use these once known instead of the values
# declared in channels.yaml. NULL: the server did not say.
channel_limits = Table(
    "channel_limits",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("server", Text, nullable=False),  # the base URL the limits were read from
    Column("max_characters", Integer),
    Column("characters_per_url", Integer),
    Column("description_limit", Integer),
    Column("max_media", Integer),
    Column("image_size_limit", Integer),
    Column("read_at", DateTime, nullable=False),
)

# Engagement readings, appended and never updated. A metric that cannot be read is stored as
# unavailable with the reason (e.g. a missing scope), never as 0.
snapshots = Table(
    "snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", String(32), ForeignKey("items.id"), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("value", Float),
    Column("fetched_at", DateTime, nullable=False),
    Column("source", String(128), nullable=False),
    Column("available", Boolean, nullable=False),
    Column("reason", Text),
    Index("ix_snapshots_item_metric", "item_id", "metric", "fetched_at"),
)

# --- newsletters ------------------------------------------------------------------------------
# One row per (newsletter item, recipient). A recipient is sent at most once: a row moves
# pending -> claimed -> sending -> sent, and `sending` is committed before the body and its final
# "." go out, so a crash leaves at most one ambiguous row per connection (settled as
# `unknown`, never resent unless an operator re-opens it: see `resends`). See
# dissemination/publish/channels/email/sending.py.
DELIVERY_OPEN = ("pending", "claimed", "sending", "deferred")
DELIVERY_SETTLED = ("sent", "bounced", "rejected", "suppressed", "withdrawn", "unknown", "failed", "expired")

deliveries = Table(
    "deliveries",
    metadata,
    Column("item_id", String(32), ForeignKey("items.id"), primary_key=True),
    Column("address", String(320), primary_key=True),  # normalised: stripped, lower case
    Column("address_key", String(32), nullable=False),  # keyed hash; what links and tokens carry
    Column("state", String(16), nullable=False),
    Column("owner", String(128)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("detail", Text),
    Column("updated_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    Index("ix_deliveries_item_state", "item_id", "state", "address"),  # claims take chunks in this order
    Index("ix_deliveries_address_key", "address_key"),
)

# An operator's decision to send an `unknown` recipient again (`dissemination resend-unknown`):
# the row goes back to pending, and this records who decided it, when, and why it was unknown.
resends = Table(
    "resends",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", String(32), ForeignKey("items.id"), nullable=False),
    Column("address", String(320), nullable=False),
    Column("requested_by", String(128), nullable=False),
    Column("requested_at", DateTime, nullable=False),
    Column("previous_detail", Text),
    Index("ix_resends_item", "item_id", "address"),
)

# Addresses that must never be mailed again. Keyed by normalised address, not by contact, so it
# survives the contact being deleted from (and added back to) a stakeholder map. `scope` is the
# list (e-mail channel id) for an unsubscribe, '*' for hard bounces and complaints.
suppressions = Table(
    "suppressions",
    metadata,
    Column("address", String(320), primary_key=True),
    Column("scope", String(64), primary_key=True),
    Column("reason", String(16), nullable=False),  # unsubscribed | bounced | complained
    Column("item_id", String(32)),  # the newsletter it came from, for the metrics; may be empty
    Column("detail", Text),
    Column("created_at", DateTime, nullable=False),
)

# Clicks through the redirect endpoint. `address` only for contacts who consented to tracking.
clicks = Table(
    "clicks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", String(32), nullable=False),
    Column("url", Text, nullable=False),
    Column("address", String(320)),
    Column("clicked_at", DateTime, nullable=False),
    Index("ix_clicks_item", "item_id"),
)

# An operator lifting a suppression (`dissemination unsuppress`): the row is deleted from
# `suppressions`, and this keeps what it was, who lifted it, when and why.
unsuppressions = Table(
    "unsuppressions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("address", String(320), nullable=False),
    Column("scope", String(64), nullable=False),
    Column("previous_reason", String(16), nullable=False),
    Column("previous_detail", Text),
    Column("suppressed_at", DateTime, nullable=False),
    Column("lifted_by", String(128), nullable=False),
    Column("lifted_reason", Text, nullable=False),
    Column("lifted_at", DateTime, nullable=False),
    Index("ix_unsuppressions_address", "address"),
)

# --- subscribers ------------------------------------------------------------------------------
# The people who receive newsletters: personal data, so in the database and never in git (the
# stakeholder maps keep organisations, roles and audiences). A subscriber is on lists (the
# audiences whose edition they get), each with its own consent record. See
# dissemination/ledger/subscribers.py.
SUBSCRIBER_STATES = ("pending", "active", "unsubscribed", "bounced", "erased")

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("address", String(320), nullable=False, unique=True),  # normalised: stripped, lower case
    Column("name", String(200)),
    Column("language", String(8), nullable=False, default="nl"),
    Column("organisation", String(64)),  # a stakeholder id from the maps, when known
    Column("tracking", Boolean, nullable=False, default=False),  # consent to per-person click tracking
    Column("state", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("list", String(64), primary_key=True),  # an audience id
    Column("state", String(16), nullable=False),  # pending | active | unsubscribed
    Column("consent_source", Text, nullable=False),
    Column("consent_at", DateTime, nullable=False),
    Column("confirmed_at", DateTime),  # double opt-in: when the link in the confirmation mail was used
    Column("request_origin", Text),  # double opt-in: where the request came from (client address)
    Column("unsubscribed_at", DateTime),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_subscriptions_list_state", "list", "state"),
)

# Addresses erased at the person's request (AVG art. 17): only a keyed hash, so an import can
# refuse the address without the ledger holding it.
erasures = Table(
    "erasures",
    metadata,
    Column("address_hash", String(64), primary_key=True),
    Column("erased_at", DateTime, nullable=False),
)

# `dissemination serve` beats here after every publish tick, so `status` and `/health` can tell a
# dead scheduler from a quiet one (nothing due) without Prefect. One row per running `serve`
# (its worker id); a clean stop removes its row.
heartbeats = Table(
    "heartbeats",
    metadata,
    Column("worker", String(128), primary_key=True),
    Column("beat_at", DateTime, nullable=False),
    Column("every_seconds", Integer, nullable=False),  # the publish period: what "late" means
    Column("started_at", DateTime, nullable=False),
)

# --- partners (endorsement) -------------------------------------------------------------------
# A partner's own short link (/d/<code>) to one of our publications. The code is a keyed hash of
# (partner, publication, url): unguessable, the same every time the kit is built, and a check
# that the row was not edited (the web endpoint recomputes it before redirecting).
partner_links = Table(
    "partner_links",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("partner", String(64), nullable=False),
    Column("publication", String(128), nullable=False),  # a knowledge item id
    Column("url", Text, nullable=False),  # the target as written in the content, without utm_source
    Column("created_at", DateTime, nullable=False),
    Index("ix_partner_links_partner", "partner", "publication"),
)

# One row per counted click on a partner link, and nothing about who clicked: no address, no IP,
# no user agent, no time finer than the day (in Europe/Amsterdam, as the report counts periods).
partner_clicks = Table(
    "partner_clicks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner", String(64), nullable=False),
    Column("publication", String(128), nullable=False),
    Column("day", Date, nullable=False),
    Index("ix_partner_clicks_partner_day", "partner", "day"),
)
