"""Rendering: channel rules, LinkedIn escaping, UTM attribution, templates, newsletters."""

import datetime as dt
import re
from pathlib import Path

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from dissemination.check import run_check
from dissemination.render import UNSUBSCRIBE_PLACEHOLDER, Renderer
from dissemination.render.attribution import Utm
from dissemination.publish.channels.linkedin import escape_little
from dissemination.publish.channels.mastodon import mastodon_length
from dissemination.publish.channels.text import find_urls, grapheme_length
from dissemination.render.context import datum, datumtijd
from dissemination.render.variants import planned_variants

ZWJ = "\u200d"

# Ground truth from a real Mastodon 4.x server (Mastodon.py tests/test_status_length.py),
# see shared/platform_apis.md §1.5.
MASTODON_GROUND_TRUTH = [
    ("", 0),
    ("hello", 5),
    (" leading and trailing spaces   ", 31),
    (" tabs\tand\nnewlines\r\n", 19),
    ("check http://example.com and https://example.org/page?x=1#frag", 57),
    ("ftp://files.example.net/resource", 32),
    ("http://user:pass@example.com:8080/path", 38),
    ("http://127.0.0.1:3000/health", 28),
    ("https://[2001:db8::1]/status", 28),
    ("https://[2001:db8:85a3::8a2e:370:7334]:443/path?ok=1", 52),
    ("mailto:someone@example.com", 26),
    ("git+ssh://git@example.co.uk:22/repo.git", 39),
    ("https://very.long.tld.example.museum/collection/item", 23),
    ("@alice", 6),
    ("@bob@example.com", 4),
    ("hi @charlie and @dora@example.social!", 22),
    ("hey @me@example.com look at https://example.com/a-b_c~d?e=f#g and @you  ", 50),
    ("a: \U0001F1EA\U0001F1EA", 4),
    ("b: 👨" + ZWJ + "👩" + ZWJ + "👧" + ZWJ + "👦", 4),
    ("c: 👩🏽" + ZWJ + "💻", 4),
    ("d: ✊🏿", 4),
    ("é", 1),
    ("f\u0301", 1),
    ("https://sub.sub2.Путин.рф/увидимся/в?Гааге=военный#преступник", 48),
    ("clusters: 😀😃😄😁😆😅😂🤣😊🙂😉🙃😇🥰😍🤩😘😗😙😚", 30),
    ("See: http://example.com https://[2001:db8::2]:8443/a ftp://user:pw@files.example.org:21/x "
     "http://192.168.0.1/", 114),
    ("@one https://example.social/@two 👩🏽" + ZWJ + "💻 \U0001F1EA\U0001F1EA @three@example.com ✊🏿", 41),
    ("(see https://example.com.)", 30),
    ("[link: http://user:pass@host.example:8080/path?x=y#z]", 53),
    ("<@root> and {@admin@example.net}", 20),
    ("https://example.com/a-b_c~d?param_a=1&param-b=2", 23),
]


@pytest.mark.parametrize("text,expected", MASTODON_GROUND_TRUTH)
def test_mastodon_length_matches_the_server(text, expected):
    assert mastodon_length(text) == expected
    assert mastodon_length(text, spoiler_text="what") == expected + 4


def test_mastodon_url_weight_is_configurable():
    assert mastodon_length("zie https://example.org/een/heel/lang/pad", url_weight=30) == 4 + 30


@given(st.text(alphabet=st.sampled_from(
    ["a", " ", "\r", "\n", "é", "e", "\u0301", ZWJ, "👩", "🏽", "\U0001F1EA", "\U0001F1F1", "각", "\u1100",
     "\u1161", "\u0915", "\u094d", "\ufe0f", "–", "ß"]), max_size=40))
def test_grapheme_fast_path_agrees_with_full_segmentation(text):
    assert grapheme_length(text) == len(regex.findall(r"\X", text))


# --- LinkedIn little text ------------------------------------------------------------------------

@pytest.mark.parametrize("char", list("\\|{}@[]()<>#*_~"))
def test_every_reserved_character_is_escaped(char):
    assert escape_little(f"a {char} b") == f"a \\{char} b"


def test_linkedin_keeps_hashtags_mentions_and_urls_working():
    text = ("Lees het verslag (gratis) van @[TLN](urn:li:organization:123) over 4*5 uur_rooster: "
            "https://example.org/a_b?utm_source=x#frag. #socialeinnovatie #logistiek")
    assert escape_little(text) == (
        "Lees het verslag \\(gratis\\) van @[TLN](urn:li:organization:123) over 4\\*5 uur\\_rooster: "
        "https://example.org/a_b?utm_source=x#frag. #socialeinnovatie #logistiek")


def test_linkedin_escapes_a_hash_that_is_not_a_hashtag():
    assert escape_little("nummer # 1 en C# en a@b") == "nummer \\# 1 en C\\# en a\\@b"


def test_urls_end_before_trailing_punctuation():
    text = "(zie https://example.com/a.) en https://nl.wikipedia.org/wiki/Logistiek_(vak), klaar"
    assert [text[s:e] for s, e in find_urls(text)] == [
        "https://example.com/a", "https://nl.wikipedia.org/wiki/Logistiek_(vak)"]


# --- UTM -----------------------------------------------------------------------------------------

UTM = Utm(("topsectorlogistiek.nl",), "mastodon", "social", "reeks-2027", "mkb")
TAGS = "utm_source=mastodon&utm_medium=social&utm_campaign=reeks-2027&utm_content=mkb"


@pytest.mark.parametrize("url,expected", [
    ("https://topsectorlogistiek.nl/kennis", f"https://topsectorlogistiek.nl/kennis?{TAGS}"),
    ("https://www.topsectorlogistiek.nl/a?id=7&x=%20y", f"https://www.topsectorlogistiek.nl/a?id=7&x=%20y&{TAGS}"),
    ("https://topsectorlogistiek.nl/a#deel-2", f"https://topsectorlogistiek.nl/a?{TAGS}#deel-2"),
    ("https://topsectorlogistiek.nl/a?b=1#c", f"https://topsectorlogistiek.nl/a?b=1&{TAGS}#c"),
    ("https://example.org/a?b=1", "https://example.org/a?b=1"),
    ("https://nottopsectorlogistiek.nl/a", "https://nottopsectorlogistiek.nl/a"),
    ("mailto:info@topsectorlogistiek.nl", "mailto:info@topsectorlogistiek.nl"),
])
def test_utm_tags_owned_links_only(url, expected):
    assert UTM.tag(url) == expected


def test_utm_keeps_a_parameter_already_set():
    tagged = UTM.tag("https://topsectorlogistiek.nl/a?utm_source=nieuwsbrief")
    assert tagged.count("utm_source") == 1 and "utm_source=nieuwsbrief" in tagged
    assert UTM.tag(UTM.tag("https://topsectorlogistiek.nl/")) == UTM.tag("https://topsectorlogistiek.nl/")


def test_utm_in_text_and_html():
    text = "Zie https://topsectorlogistiek.nl/a. En https://example.org/b."
    assert UTM.tag_text(text) == f"Zie https://topsectorlogistiek.nl/a?{TAGS}. En https://example.org/b."
    html = '<a href="https://topsectorlogistiek.nl/a?x=1&amp;y=2">x</a><a href="https://example.org/">y</a>'
    assert UTM.tag_html(html) == (
        f'<a href="https://topsectorlogistiek.nl/a?x=1&amp;y=2&amp;{TAGS.replace("&", "&amp;")}">x</a>'
        '<a href="https://example.org/">y</a>')


# --- Dutch dates ---------------------------------------------------------------------------------

def test_dutch_dates():
    assert datum(dt.date(2027, 3, 2)) == "dinsdag 2 maart 2027"
    assert datum(dt.date(2027, 5, 1), weekday=False) == "1 mei 2027"
    assert datumtijd(dt.datetime(2027, 10, 31, 9, 5)) == "zondag 31 oktober 2027 om 09:05"


# --- the renderer on a project -------------------------------------------------------------------

def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def add_newsletter(root: Path, title: str = "Den Hartogh – vier dagen rijden") -> None:
    """Add an e-mail channel to the fixture campaign and make it own example.org-style links."""
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace(
        "channels: [mastodon, linkedin]", "channels: [mastodon, linkedin, nieuwsbrief]"))
    item = root / "knowledge" / "den-hartogh.md"
    item.write_text(item.read_text().replace("title: Den Hartogh – vier dagen rijden", f'title: "{title}"'))
    programme = root / "programme.yaml"
    programme.write_text(programme.read_text() + "owned_domains: [kennisbanksocialeinnovatie.nl]\n")


def render_all(root: Path, **kwargs):
    result = run_check(root)
    renderer = Renderer(result.project, **kwargs)
    out = {}
    for campaign, post, channel, audience, slot in planned_variants(result.project, result.slots):
        out[(post.id, channel, audience, slot.knowledge)] = renderer.render(campaign, post, channel, audience, slot)
    return result, out


def test_renders_each_channel_as_it_counts(content_root):
    root = content_root()
    add_newsletter(root)
    result, out = render_all(root)
    assert result.ok, result.problems.errors
    mastodon, problems = out[("uitgelicht", "mastodon", "mkb", "den-hartogh")]
    assert problems == []
    assert mastodon.kind == "mastodon" and mastodon.limit == 500 and mastodon.html is None
    assert "Lees meer: https://www.kennisbanksocialeinnovatie.nl/?utm_source=mastodon&utm_medium=social" \
           "&utm_campaign=reeks-2027&utm_content=uitgelicht.mkb" in mastodon.text  # the post and the audience
    assert mastodon.text.endswith("#socialeinnovatie #logistiek")
    assert mastodon.length == mastodon_length(mastodon.text)
    assert mastodon.link and "utm_source=mastodon" in mastodon.link

    linkedin, _ = out[("aftrap", "linkedin", "mkb", None)]
    assert linkedin.text.startswith("Vandaag start de reeks, met een langere tekst voor LinkedIn.")
    assert linkedin.limit == 3000

    email, problems = out[("uitgelicht", "nieuwsbrief", "mkb", "den-hartogh")]
    assert problems == [] and email.kind == "email"
    assert email.subject == "Uitgelicht – Kennisreeks"
    assert UNSUBSCRIBE_PLACEHOLDER in email.html and UNSUBSCRIBE_PLACEHOLDER in email.text
    assert 'style="' in email.html and "@media" in email.html  # inlined, media query kept
    assert email.length == len(email.html.encode()) < 102_400 and email.limit == 102_400
    assert "dinsdag 2 maart 2027" in email.html
    assert "utm_source=nieuwsbrief&amp;utm_medium=email" in email.html
    assert "utm_medium=email" in email.text


def test_audience_template_wins_and_the_projects_own_templates_win_over_defaults(content_root):
    root = content_root()
    _, out = render_all(root)
    beleid, _ = out[("uitgelicht", "mastodon", "beleid", "den-hartogh")]
    assert "Bron: Den Hartogh – vier dagen rijden (1 mei 2023)" in beleid.text  # mastodon/post.beleid.j2
    write(root, "templates/mastodon/post.j2", "EIGEN {{ body }}")
    _, out = render_all(root)
    for audience in ("mkb", "beleid"):
        assert out[("uitgelicht", "mastodon", audience, "den-hartogh")][0].text == "EIGEN Praktijkvoorbeeld van de week."


def test_post_text_is_a_template_for_the_featured_item(content_root):
    root = content_root()
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace(
        "Praktijkvoorbeeld van de week.", "Deze week: {{ item.title }} ({{ slot | datum }})."))
    _, out = render_all(root)
    text = out[("uitgelicht", "mastodon", "mkb", "sharehouse")][0].text
    assert text.startswith("Deze week: SHAREHOUSE living lab (dinsdag 9 maart 2027).")


def test_mentions_in_the_channels_syntax(content_root):
    root = content_root()
    maps = root / "stakeholder_maps" / "test.yaml"
    maps.write_text(maps.read_text().replace(
        "    power: 4\n", "    power: 4\n    mastodon: \"@tln@mastodon.nl\"\n    linkedin: urn:li:organization:77\n", 1))
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace(
        "Vandaag start de reeks, met een langere tekst voor LinkedIn.",
        "Met {{ 'tln' | mention }} (de branche) en {{ 'ienw' | mention }}."))
    _, out = render_all(root)
    linkedin = out[("aftrap", "linkedin", "mkb", None)][0]
    assert linkedin.text.startswith(
        "Met @[Transport en Logistiek Nederland](urn:li:organization:77) \\(de branche\\) en "
        "Ministerie van Infrastructuur en Waterstaat.")


def test_html_is_escaped_in_the_newsletter(content_root):
    root = content_root()
    add_newsletter(root, title="<script>alert(1)</script>")
    _, out = render_all(root)
    email = out[("uitgelicht", "nieuwsbrief", "mkb", "den-hartogh")][0]
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html


def test_a_newsletter_over_the_gmail_limit_is_reported(content_root):
    root = content_root()
    add_newsletter(root)
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace(
        "Vandaag start de reeks.\n", "Vandaag start de reeks.\n\n" + ("Een lange alinea. " * 60 + "\n\n") * 110))
    result = run_check(root)
    messages = [str(p) for p in result.problems.errors]
    assert any(re.match(r"campaigns/reeks\.md:34: nieuwsbrief newsletter for mkb is \d+ bytes of HTML, "
                        r"over the limit of 102400", m) for m in messages), messages


@pytest.mark.parametrize("expression", [
    "{{ body.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ lipsum.__globals__['os'] }}",
])
def test_sandbox_refuses_python_internals_with_file_and_line(expression, content_root, cli):
    root = content_root()
    write(root, "templates/linkedin/post.j2", "{{ body }}\n{% if true %}\n" + expression + "\n{% endif %}\n")
    result = cli("--root", str(root), "check")
    assert result.exit_code == 1
    assert result.output.startswith("templates/linkedin/post.j2:3: template error: ")
    assert "unsafe" in result.output or "undefined" in result.output
    assert "Traceback" not in result.output


def test_template_syntax_error_in_post_text_points_into_the_campaign(content_root, cli):
    root = content_root()
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace(
        "Vandaag start de reeks.\n", "Vandaag start de reeks.\nTot {{ item.title dinsdag.\n"))
    result = cli("--root", str(root), "check")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("campaigns/reeks.md:39: template error: ")
    assert "Traceback" not in result.output


def test_undefined_values_are_errors_not_empty_text(content_root, cli):
    root = content_root()
    write(root, "templates/mastodon/post.j2", "{{ body }}\n{{ item.titel }}\n")
    result = cli("--root", str(root), "check")
    hint = " (see the templates section of docs/writing-campaigns.md)"
    assert result.output.splitlines()[:2] == [
        "templates/mastodon/post.j2:2: template error: 'None' has no attribute 'titel'" + hint,  # no item
        "templates/mastodon/post.j2:2: template error: item has no field 'titel'; did you mean 'title'? (fields: "
        "id, title, type, summary, url, link, image, image_alt, published, themes, body)" + hint,
    ]


def test_owned_domains_must_be_domains(content_root, cli):
    root = content_root()
    programme = root / "programme.yaml"
    programme.write_text(programme.read_text() + "owned_domains: [https://example.org/]\n")
    result = cli("--root", str(root), "check")
    assert "programme.yaml:11: 'https://example.org/' is not a domain name" in result.output


def test_renderer_says_which_audiences_have_their_own_template(content_root):
    root = content_root()
    renderer = Renderer(run_check(root).project)
    assert renderer.audience_specific("mastodon", "beleid")  # the default mastodon/post.beleid.j2
    assert not renderer.audience_specific("mastodon", "mkb")
    assert not renderer.audience_specific("linkedin", "beleid")
    assert not renderer.audience_specific("onbekend", "mkb")


def test_post_text_rendered_once_per_slot_only_when_it_is_the_same_everywhere(content_root):
    root = content_root()
    campaign = root / "campaigns" / "reeks.md"
    campaign.write_text(campaign.read_text().replace(
        "Praktijkvoorbeeld van de week.",
        "Voor {{ audience.name }} op {{ channel.id }}: {{ item.title }} {{ item.link }}"))
    maps = root / "programme.yaml"
    maps.write_text(maps.read_text() + "owned_domains: [kennisbanksocialeinnovatie.nl]\n")
    _, out = render_all(root)
    mastodon = out[("uitgelicht", "mastodon", "mkb", "den-hartogh")][0].text
    linkedin = out[("uitgelicht", "linkedin", "beleid", "den-hartogh")][0].plain
    assert mastodon.startswith("Voor Mkb-ondernemers op mastodon: Den Hartogh – vier dagen rijden "
                               "https://www.kennisbanksocialeinnovatie.nl/?utm_source=mastodon")
    assert "utm_content=uitgelicht.mkb" in mastodon
    assert linkedin.startswith("Voor Beleidsmakers op linkedin: Den Hartogh")
    assert "utm_source=linkedin" in linkedin and "utm_content=uitgelicht.beleid" in linkedin


# The counting and escaping run for every rendering, so they scan text by hand rather than with
# the one-line patterns that define them. These properties hold them to those definitions.
_post_text = st.lists(st.sampled_from(
    list("ab_é1 \n\t#@[]()/:.?=&-\\|{}<>*~") + ["https://", "http://x.nl/p", "#tag", "ftp://", "C#", "::/",
                                                "@[Naam](urn:li:organization:12)"]), max_size=40).map("".join)


def _escape_little_by_definition(text: str) -> str:
    keep_pattern = re.compile(r"@\[[^\[\]()\\]+\]\(urn:li:(?:person|organization):[A-Za-z0-9_-]+\)"
                              r"|(?<![\w#])#\w+")
    keep = sorted(find_urls(text) + [m.span() for m in keep_pattern.finditer(text)])
    out, pos = [], 0
    for start, end in keep:
        if start < pos:
            continue
        out += [re.sub(r"[\\|{}@\[\]()<>#*_~]", r"\\\g<0>", text[pos:start]), text[start:end]]
        pos = end
    out.append(re.sub(r"[\\|{}@\[\]()<>#*_~]", r"\\\g<0>", text[pos:]))
    return "".join(out)


@settings(max_examples=400, deadline=None)
@given(_post_text)
def test_escape_little_agrees_with_its_definition(text):
    assert escape_little(text) == _escape_little_by_definition(text)


@settings(max_examples=400, deadline=None)
@given(_post_text)
def test_url_tokens_are_found_as_the_whitespace_rule_defines(text):
    from dissemination.publish.channels.text import replace_url_tokens

    def mark(token: str) -> str:
        return f"<{token}>"

    assert replace_url_tokens(text, mark) == re.sub(r"(?<!\S)\S*://\S*", lambda m: mark(m.group(0)), text)
