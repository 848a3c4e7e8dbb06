"""The per-recipient byte template: whatever the newsletter text and the values, the filled
message decodes to exactly the text with the values in place, with CRLF line ends, lines of at
most 76 characters in the quoted-printable parts, and correct SMTP dot-stuffing."""

import datetime as dt
import email
import re
from email import policy

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dissemination.publish import mime

PLACEHOLDER = "%%UNSUBSCRIBE_URL%%"
TEXT = st.lists(st.sampled_from(list("abcé ëĳ.=\t\n-<>\"'&%") + ["ĳzer", "\r\n", ".\n", " \n", "x" * 90]),
                max_size=120).map("".join)
URL = st.text(alphabet=st.sampled_from(list("abcXYZ019-_.=~/")), min_size=1, max_size=200).map(
    lambda tail: "https://nieuwsbrief.example.org/afmelden/" + tail)


def _normal(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


@settings(max_examples=150, deadline=None)
@example(before="x" * 76, after="a", html_before="y" * 73 + "é", url="https://n.example.org/x", name=None)
@example(before="x" * 74 + " ", after=".a", html_before="y" * 73 + "\t", url="https://n.example.org/=.", name="Ĳ")
@given(before=TEXT, after=TEXT, html_before=TEXT, url=URL, name=st.one_of(st.none(), st.text(max_size=40)))
def test_filled_template_decodes_to_the_text_with_the_values(before, after, html_before, url, name):
    text = f"{before}{PLACEHOLDER}{after}"
    html = f"<p>{html_before}</p><a href=\"{PLACEHOLDER}\">Afmelden</a>{after}"
    template = mime.build_template(
        from_address="nieuwsbrief@example.org", from_name="Nieuwsbrief SI", reply_to=None, subject="Ideeën ĳ",
        text=text, html_body=html, list_id="nieuwsbrief.example.org", list_name="Nieuwsbrief", placeholder=PLACEHOLDER,
        track_clicks=False, now=dt.datetime(2027, 3, 2, 9, tzinfo=dt.timezone.utc))
    name = name.replace("\r", "").replace("\n", "") if name else name
    values = {"to": mime.recipient_header(name, "lid@example.org"), "message_id": b"<a.b@example.org>",
              "list_unsubscribe": mime.list_unsubscribe(url, "nieuwsbrief@example.org"),
              mime.UNSUBSCRIBE_SLOT: mime.qp_value(url)}
    raw = template.fill(values)
    assert re.search(rb"(?<!\r)\n", raw) is None and b"\r" not in raw.replace(b"\r\n", b"")
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 76 for line in body.split(b"\r\n")), max(body.split(b"\r\n"), key=len)
    message = email.message_from_bytes(raw, policy=policy.default)
    plain, rich = message.iter_parts()
    assert _normal(plain.get_content()) == _normal(text.replace(PLACEHOLDER, url))
    assert _normal(rich.get_content()) == _normal(html.replace(PLACEHOLDER, url))
    assert message["To"].addresses[0].addr_spec == "lid@example.org"
    if name and name.strip() and "\x00" not in name:
        assert message["To"].addresses[0].display_name.strip() == name.strip() or not name.isprintable()
    wire = template.fill_wire(values)
    assert re.search(rb"\r\n\.(?!\.)", wire) is None or wire.startswith(b".")  # every leading dot doubled
    assert wire.replace(b"\r\n..", b"\r\n.") == raw
