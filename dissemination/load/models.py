"""The content model: what communications staff write, as validated types.

Field names are the keys people type in front matter and YAML. Models forbid unknown keys so a
typo is reported instead of silently ignored. Validators raise `content_error(...)` with a message
and a hint; the readers turn those into `path:line: message (hint)`.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from enum import Enum
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from dissemination.addresses import BadAddress, display_name, mailbox
from dissemination.problems import printable

DEFAULT_TIMEZONE = "Europe/Amsterdam"


def content_error(message: str, hint: str | None = None) -> PydanticCustomError:
    # The message travels in the context, not the template, so braces in user text are safe.
    return PydanticCustomError("content", "{message}", {"message": message, "hint": hint})


class Content(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --- small value types ------------------------------------------------------------------------

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_MILESTONE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_MASTODON_ACCOUNT = re.compile(r"^@[A-Za-z0-9_]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_LINKEDIN_URN = re.compile(r"^urn:li:(person|organization):[A-Za-z0-9_-]+$")
_HTTP_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s)?\s*$")


def _identifier(value: str) -> str:
    if not _ID.match(value):
        lower = value.lower()
        raise content_error(
            f"'{printable(value)}' is not a valid id",
            f"did you mean '{lower}'? ids are lower-case" if _ID.match(lower) else
            "use lower-case letters, digits, '-' and '_', starting with a letter or digit",
        )
    return value


def _milestone_id(value: str) -> str:
    if not _MILESTONE_ID.match(value):
        raise content_error(f"'{value}' is not a valid milestone id", "e.g. PL3-2")
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise content_error(
            "this must name an environment variable, not hold a secret",
            "use an upper-case name like MASTODON_TOKEN and set the secret in the environment",
        )
    return value


def _http_url(value: str) -> str:
    if not _HTTP_URL.match(value) or not value.isprintable():
        raise content_error("not a web address", "write a full address starting with https://")
    return value


def _ascii_url(value: str) -> str:
    """An address that goes into mail headers (List-Unsubscribe) and links as it is written."""
    if not value.isascii():
        raise content_error(f"'{value}' has non-ASCII characters",
                            "write the domain in its xn-- form and percent-encode the rest, "
                            "e.g. https://xn--bcher-kva.example/afmelden")
    return value


def _email(value: str) -> str:
    try:
        mailbox(value)
    except BadAddress as exc:
        raise content_error(f"'{printable(value)}' is not an e-mail address: it {exc}", "e.g. naam@example.org") from None
    return value


def _display_name(value: str) -> str:
    try:
        return display_name(value)
    except BadAddress as exc:
        raise content_error(f"the name {exc}", "write the name on one line, without control characters") from None


def _mastodon_account(value: str) -> str:
    if not _MASTODON_ACCOUNT.match(value):
        raise content_error(
            f"'{value}' is not a Mastodon account", "write the full handle, e.g. @tno@mastodon.nl"
        )
    return value


def _linkedin_urn(value: str) -> str:
    if not _LINKEDIN_URN.match(value):
        raise content_error(
            f"'{value}' is not a LinkedIn URN",
            "e.g. urn:li:organization:1234567 or urn:li:person:AbC123",
        )
    return value


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(value: str) -> str:
    if value not in _zones():
        raise content_error(
            f"'{value}' is not an IANA time zone", f"use a name like {DEFAULT_TIMEZONE}"
        )
    return value


MAX_DURATION = dt.timedelta(days=36525)  # further back or ahead than any date we can compute with


def _duration(value: Any) -> dt.timedelta:
    """Accept `2h`, `90m`, `1h30m`, `1d`, `30s` or a number of minutes."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, bool):
        raise content_error("not a duration", "write e.g. 2h, 90m or 1h30m")
    if isinstance(value, int) and value >= 0:
        return dt.timedelta(minutes=value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise content_error("not a duration", "write e.g. 2h, 90m or 1h30m")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    try:
        found = dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        found = MAX_DURATION * 2
    if found > MAX_DURATION:
        raise content_error("a duration longer than 100 years", "write e.g. 30d or 2h")
    return found


def _local_time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([01]?\d|2[0-3])[:.]([0-5]\d)\s*", value)
        if match:
            return dt.time(int(match.group(1)), int(match.group(2)))
    raise content_error("not a time of day", 'write hours and minutes, e.g. time: "09:30"')


def _as_list(value: Any) -> Any:
    """A single value where a list is expected is a list of one: `audiences: mkb`."""
    return [value] if isinstance(value, (str, int)) and not isinstance(value, bool) else value


Identifier = Annotated[str, AfterValidator(_identifier)]
IdList = Annotated[list[Identifier], BeforeValidator(_as_list)]
MilestoneId = Annotated[str, AfterValidator(_milestone_id)]
EnvName = Annotated[str, AfterValidator(_env_name)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
AsciiUrl = Annotated[str, AfterValidator(_http_url), AfterValidator(_ascii_url)]
Email = Annotated[str, AfterValidator(_email)]
DisplayName = Annotated[str, AfterValidator(_display_name)]
MastodonAccount = Annotated[str, AfterValidator(_mastodon_account)]
LinkedInUrn = Annotated[str, AfterValidator(_linkedin_urn)]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]
Duration = Annotated[dt.timedelta, BeforeValidator(_duration)]
LocalTime = Annotated[dt.time, BeforeValidator(_local_time)]
def _impact_goal(value: int) -> int:
    if not 1 <= value <= IMPACT_GOALS:
        raise content_error(f"{value} is not an impact goal", f"the programme's impact goals are numbered 1 to {IMPACT_GOALS}")
    return value


IMPACT_GOALS = 6
ImpactGoal = Annotated[int, AfterValidator(_impact_goal)]
ImpactGoals = Annotated[list[ImpactGoal], BeforeValidator(_as_list)]
NonEmptyText = Annotated[str, Field(min_length=1)]


def _hashtag(value: str) -> str:
    tag = value.lstrip("#")
    if not re.fullmatch(r"\w+", tag):
        raise content_error(
            f"'{value}' is not a hashtag", "letters, digits and '_' only, e.g. socialeinnovatie"
        )
    return tag


Hashtag = Annotated[str, AfterValidator(_hashtag)]


# --- programme --------------------------------------------------------------------------------


class Milestone(Content):
    id: MilestoneId
    description: NonEmptyText
    line: Literal["PL1", "PL2", "PL3"] | None = None
    due: dt.date | None = None
    impact_goals: ImpactGoals = []
    # The day the stuurgroep recorded it as reached; the report then calls it "behaald".
    achieved: dt.date | None = None


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _domain(value: str) -> str:
    domain = value.strip().lower()
    if not _DOMAIN.match(domain):
        raise content_error(
            f"'{value}' is not a domain name", "write only the domain, e.g. topsectorlogistiek.nl"
        )
    return domain


Domain = Annotated[str, AfterValidator(_domain)]


def _period_spec(value: Any) -> str:
    from dissemination.periods import PeriodError, parse_period

    try:
        return parse_period(str(value)).label
    except PeriodError:
        raise content_error(f"'{value}' is not a period",
                            "write a year (2026), a quarter (2026-Q4) or a month (2026-11)") from None


PeriodSpec = Annotated[str, BeforeValidator(_period_spec)]
TARGET_METRICS = ("publications", "reach", "interactions", "clicks", "subscribers")


class Target(Content):
    """A figure the stuurgroep holds the programme to, e.g. reach among partners ≥ 2 × last year.

    The figure (`metric`) counts publications that match every given filter; `per` makes one
    target of each campaign, audience or channel. The goal is a fixed `minimum`, or `times_baseline`
    × the same figure in the `baseline` period."""

    id: Identifier
    description: NonEmptyText
    # partner_reach: clicks on partner links plus boosts by partners (issue 16), over all partners
    metric: Literal["publications", "reach", "interactions", "clicks", "subscribers", "partner_reach"]
    audiences: IdList = []
    channels: IdList = []
    campaigns: IdList = []
    milestones: Annotated[list[MilestoneId], BeforeValidator(_as_list)] = []
    per: Literal["campaign", "audience", "channel"] | None = None
    minimum: Annotated[float, Field(ge=0)] | None = None
    times_baseline: Annotated[float, Field(gt=0)] | None = None
    baseline: PeriodSpec | None = None
    period: PeriodSpec | None = None  # the report period it applies to; none: every period

    @model_validator(mode="after")
    def _one_goal(self) -> "Target":
        if (self.minimum is None) == (self.times_baseline is None):
            raise content_error(f"target '{self.id}' needs exactly one of minimum and times_baseline",
                                "e.g. minimum: 500, or times_baseline: 2 with baseline: 2025")
        if self.times_baseline is not None and self.baseline is None:
            raise content_error(f"target '{self.id}' compares with a baseline but names no baseline period",
                                "add e.g. baseline: 2025-Q4")
        if self.minimum is not None and self.baseline is not None:
            raise content_error(f"target '{self.id}' has a baseline but no times_baseline",
                                "add times_baseline: 2, or remove the baseline")
        if self.metric == "partner_reach" and (self.per or self.audiences or self.channels or self.campaigns
                                               or self.milestones):
            raise content_error("reach through partners is counted over all partners, from their links and boosts",
                                "remove per, audiences, channels, campaigns and milestones from this target")
        if self.metric == "subscribers" and (self.times_baseline is not None or self.per not in (None, "audience")
                                             or self.channels or self.campaigns or self.milestones):
            raise content_error("subscribers are counted per audience from the stakeholder map, now",
                                "give a minimum, optionally audiences and per: audience")
        return self


class Sender(Content):
    """Who sends the newsletters, as the footer of every newsletter says (the bulk-sender rules
    and the Telecommunicatiewet ask for an identifiable sender with a postal address)."""

    organisation: NonEmptyText
    postal_address: NonEmptyText
    contact: Email
    privacy_url: HttpUrl


class Programme(Content):
    """`programme.yaml`: the programme's identity, impact goals, milestones and targets."""

    name: NonEmptyText
    sender: Sender | None = None
    impact_goals: dict[ImpactGoal, NonEmptyText] = {}
    milestones: list[Milestone] = []
    targets: list[Any] = []  # validated one by one as `Target`
    events: list["ProgrammeEvent"] = []
    # Links to these domains (and their sub-domains) get UTM parameters when rendered.
    owned_domains: Annotated[list[Domain], BeforeValidator(_as_list)] = []


# --- channels ---------------------------------------------------------------------------------


class ChannelSettings(Content):
    """What every channel in `channels.yaml` may say. Each kind's own settings (`MastodonSettings`
    and so on) live in its module under `dissemination/publish/channels/` and add to these;
    `channels.yaml` is read against the model of the kind it names (see `channels.base.settings_model`)."""

    kind: str
    # How far past its slot an item may still go out; later it is marked missed, not posted.
    late_tolerance: Duration = dt.timedelta(hours=2)
    # Two posts on this account closer together than this are a collision (`check`, `plan
    # --simulate`): the second buries the first in followers' timelines. 0 allows any gap.
    min_gap: Duration = dt.timedelta(minutes=30)
    description: str | None = None
    # Reading engagement: requests in flight at once, and requests per minute (None: the
    # channel's own default, kept under the platform's rate limit).
    metrics_concurrency: Annotated[int, Field(ge=1, le=32)] = 4
    metrics_per_minute: Annotated[int, Field(ge=1)] | None = None

    def endpoint(self) -> str:
        """The server a stored token belongs to: a token stored for another one is not used."""
        return ""

    def secret_envs(self) -> list[str]:
        """The environment variables holding this channel's secrets (named, never the values)."""
        return []

    def paths(self) -> dict[str, str]:
        """Settings that name a file or folder, which must stay inside the content root."""
        return {}

    def problems(self, channel_id: str) -> list[tuple[tuple[str, ...], str, str, Literal["error", "warning"]]]:
        """What `check` says about settings that are valid one by one but not together: (key path
        for the line, message, hint, severity)."""
        return []


# Keys that would hold a secret value; the file may only name the environment variable.
SECRET_KEYS = {"token", "access_token", "refresh_token", "password", "secret", "api_key", "client_secret"}


# --- stakeholder analysis ---------------------------------------------------------------------


class Quadrant(str, Enum):
    """Mendelow's power/interest grid; derived from power and interest, never typed."""

    manage_closely = "manage_closely"
    keep_satisfied = "keep_satisfied"
    keep_informed = "keep_informed"
    monitor = "monitor"

    @classmethod
    def of(cls, power: int, interest: int) -> "Quadrant":
        high_power, high_interest = power >= 3, interest >= 3
        if high_power and high_interest:
            return cls.manage_closely
        if high_power:
            return cls.keep_satisfied
        if high_interest:
            return cls.keep_informed
        return cls.monitor

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class ContactBudget(Content):
    """Contacts per stakeholder per calendar month, by quadrant."""

    manage_closely: Annotated[int, Field(ge=0)] = 12
    keep_satisfied: Annotated[int, Field(ge=0)] = 4
    keep_informed: Annotated[int, Field(ge=0)] = 8
    monitor: Annotated[int, Field(ge=0)] = 2

    def for_quadrant(self, quadrant: Quadrant) -> int:
        return int(getattr(self, quadrant.value))


class Audience(Content):
    id: Identifier
    name: NonEmptyText
    description: NonEmptyText
    tone: NonEmptyText
    language: Literal["nl", "en"] = "nl"
    channels: IdList = Field(default=[], description="preferred channel ids")


class Consent(Content):
    source: NonEmptyText
    date: dt.date


class Contact(Content):
    # People's addresses belong in the subscriber database, not in git: `email` (with `consent`
    # and `tracking`) is read only by `dissemination subscribers import-contacts`, once.
    email: Email | None = None
    name: DisplayName | None = None
    role: str | None = None
    consent: Consent | None = None
    # Per-person click tracking only for contacts who agreed to it.
    tracking: bool = False
    # The list (audience id) this person should be invited to subscribe to, through the sign-up form.
    invite: Identifier | None = None


class StakeholderType(str, Enum):
    company = "company"
    branch_organisation = "branch_organisation"
    employer_organisation = "employer_organisation"
    trade_union = "trade_union"
    government = "government"
    knowledge_institute = "knowledge_institute"
    education = "education"
    funder = "funder"
    training_fund = "training_fund"
    network = "network"
    coordination_body = "coordination_body"
    media = "media"
    other = "other"


class PartnerChannels(Content):
    """Where a partner can pass our content on to its own members and followers."""

    mastodon: MastodonAccount | None = None  # its account: boosts by it are counted as its reach
    linkedin: HttpUrl | None = None  # its LinkedIn page
    newsletter: NonEmptyText | None = None  # the name of its newsletter or members' magazine
    website: HttpUrl | None = None  # the page where it places our news


class Partner(Content):
    """A stakeholder that endorses us: it gets a content kit per period and its own links."""

    channels: PartnerChannels
    # The role of the contact (in `contacts`) who receives the kit; that contact needs consent.
    contact_role: NonEmptyText
    # The partner's own audiences: the kit's texts take their tone.
    audiences: IdList

    @model_validator(mode="after")
    def _needs_a_channel(self) -> "Partner":
        if not any(getattr(self.channels, name) for name in PartnerChannels.model_fields):
            raise content_error("a partner needs at least one channel to pass our content on",
                                "add channels: {mastodon: ..., linkedin: ..., newsletter: ..., website: ...}")
        if not self.audiences:
            raise content_error("a partner needs the audiences it reaches", "e.g. audiences: [mkb]")
        return self


class Stakeholder(Content):
    id: Identifier
    name: NonEmptyText
    type: StakeholderType
    audiences: IdList
    power: Annotated[int, Field(ge=1, le=5)]
    interest: Annotated[int, Field(ge=1, le=5)]
    attitude: Literal["champion", "supporter", "neutral", "critic", "unknown"] | None = None
    website: HttpUrl | None = None
    mastodon: MastodonAccount | None = None
    linkedin: LinkedInUrn | None = None
    # Accounts on other kinds of channel, by kind (e.g. `bluesky: name.bsky.social`), for the
    # `mention` filter of channel kinds that have no key of their own above.
    accounts: dict[Identifier, NonEmptyText] = {}
    contacts: list[Contact] = []
    partner: Partner | None = None
    notes: str | None = None

    @property
    def kit_contact(self) -> Contact | None:
        """The contact who receives the partner's kit (None: not a partner, or no such role)."""
        if self.partner is None:
            return None
        return next((c for c in self.contacts if c.role == self.partner.contact_role), None)

    @property
    def quadrant(self) -> Quadrant:
        return Quadrant.of(self.power, self.interest)


class StakeholderMapShell(Content):
    """The top level of a stakeholder map; entries are validated one by one."""

    audiences: list[Any] = []
    stakeholders: list[Any] = []
    contact_budget: ContactBudget = ContactBudget()


# --- knowledge bank ---------------------------------------------------------------------------


class KnowledgeType(str, Enum):
    project = "project"
    case = "case"
    tool = "tool"
    publication = "publication"
    event = "event"


class KnowledgeMeta(Content):
    id: Identifier
    title: NonEmptyText
    type: KnowledgeType
    url: HttpUrl
    summary: NonEmptyText
    themes: Annotated[list[NonEmptyText], BeforeValidator(_as_list)]
    impact_goals: ImpactGoals
    programme_line: Literal["PL1", "PL2", "PL3"] | None = None
    audiences: IdList = []
    published: dt.date
    image: str | None = None
    image_alt: str | None = None
    source: NonEmptyText
    # Evergreen items may be featured again once a series has shown every item.
    evergreen: bool = False

    @model_validator(mode="after")
    def _image_needs_alt(self) -> "KnowledgeMeta":
        if self.image and not self.image_alt:
            raise content_error(ALT_MISSING, ALT_HINT)
        return self


ALT_MISSING, ALT_HINT = "image without image_alt", "describe the image for screen readers in image_alt"


# Images a post may carry, by file suffix. The instance's own limits (types, size, alt text
# length) are checked again when posting; these are Mastodon's defaults, for `check`.
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
               ".webp": "image/webp"}
MAX_IMAGE_BYTES = 16 * 1024 * 1024  # Mastodon's default image_size_limit


# --- campaigns --------------------------------------------------------------------------------

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAY_ALIASES = {
    **{d: d for d in WEEKDAYS},
    **dict(zip(["ma", "di", "wo", "do", "vr", "za", "zo"], WEEKDAYS)),
    **dict(zip(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"], WEEKDAYS)),
    **dict(zip(["maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"], WEEKDAYS)),
}


def _weekday(value: Any) -> str:
    day = _DAY_ALIASES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if day is None:
        raise content_error(f"'{value}' is not a day of the week", "use mon, tue, wed, thu, fri, sat or sun")
    return day


Weekday = Annotated[str, BeforeValidator(_weekday)]


class Cadence(Content):
    """A series: one post section repeated on fixed weekdays, featuring knowledge items in order."""

    post: Identifier
    days: Annotated[list[Weekday], BeforeValidator(_as_list), Field(min_length=1)]
    time: LocalTime
    every_weeks: Annotated[int, Field(ge=1, le=52)] = 1
    start: dt.date | None = None
    end: dt.date | None = None
    repeat_evergreen: bool = False


class Event(Content):
    name: NonEmptyText
    starts: dt.datetime
    ends: dt.datetime | None = None
    place: NonEmptyText
    registration_url: HttpUrl | None = None
    # Results, entered afterwards for the stuurgroep report.
    registrations: Annotated[int, Field(ge=0)] | None = None
    attendance: Annotated[int, Field(ge=0)] | None = None


class ProgrammeEvent(Event):
    """An event of the programme outside any campaign (programme.yaml `events:`)."""

    milestones: Annotated[list[MilestoneId], BeforeValidator(_as_list)] = []

    @model_validator(mode="after")
    def _ends_after_start(self) -> "ProgrammeEvent":
        if self.ends and self.ends <= self.starts:
            raise content_error("the event ends before it starts", "check starts and ends")
        return self


class CampaignStatus(str, Enum):
    draft = "draft"
    approved = "approved"
    paused = "paused"
    archived = "archived"


class CampaignMeta(Content):
    id: Identifier
    title: NonEmptyText
    status: CampaignStatus = CampaignStatus.draft
    approved_by: str | None = None
    approved_at: dt.datetime | dt.date | None = None
    approval_digest: str | None = None
    # What the approved posts were rendered from besides this file (knowledge items, templates,
    # images), path -> digest, written by `dissemination approve`; a change holds the items using it.
    approved_sources: dict[str, str] | None = None
    owner: NonEmptyText
    goal: NonEmptyText
    milestones: Annotated[list[MilestoneId], BeforeValidator(_as_list)] = []
    impact_goals: ImpactGoals = []
    audiences: Annotated[IdList, Field(min_length=1)]
    channels: Annotated[IdList, Field(min_length=1)]
    timezone: TimeZoneName = DEFAULT_TIMEZONE
    start: dt.date
    end: dt.date
    utm_campaign: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] | None = None
    hashtags: Annotated[list[Hashtag], BeforeValidator(_as_list)] = []
    knowledge: IdList = []
    cadence: Cadence | None = None
    event: Event | None = None
    # Saying why a campaign may contact stakeholders more often than their budget allows.
    over_budget: str | None = None
    # Saying why newsletters go to audiences without a consented recipient (e.g. the list is
    # still being built); without it such a newsletter is an error.
    without_recipients: str | None = None
    # Saying why audiences with text of their own get separate posts at one moment on one account
    # (every follower sees them all); without it `check` warns.
    separate_audience_posts: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "CampaignMeta":
        if self.end < self.start:
            raise content_error("end is before start", "check the campaign's start and end dates")
        return self


# Per-post keys, written as `key: value` lines directly under the post's `##` heading.
class PostMeta(Content):
    id: Identifier | None = None
    slot: dt.datetime | None = None
    slots: list[dt.datetime] = []
    audiences: IdList = []
    channels: IdList = []
    knowledge: IdList = []
    # An image posted with the text on social channels (a file under the content root); the
    # check requires image_alt (there, so that the post's other keys still count).
    image: str | None = None
    image_alt: str | None = None
    # Audiences this post may reach on channels their stakeholder map entry does not list
    # (`allow_channels: {beleid: [mastodon]}`); without it such a post is an error in `check`.
    allow_channels: dict[Identifier, IdList] = {}


POST_KEYS = frozenset(PostMeta.model_fields)
