"""E-mail addresses and display names: the one validator behind `check` and the sender.

An address is a dot-atom local part (RFC 5322 §3.4.1; quoted local parts are refused: no mail
system we send to needs them, and they are the usual way to smuggle characters into `RCPT TO`),
`@`, and a domain that is a host name, written in Unicode or ASCII (IDNA, RFC 5890; sent in its
ASCII `xn--` form). Lengths follow RFC 5321 §4.5.3.1 (local part 64 octets, domain 255, path
256). A non-ASCII local part needs SMTPUTF8 (RFC 6531): `check` accepts it, the sender only when
the server offers the extension. No address or name may hold a control character: a CR, LF or
NUL there would end or forge a command or a header.
"""

from __future__ import annotations

import re
import unicodedata

_ATEXT = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
MAX_NAME = 200  # characters in a display name; a mail client shows far fewer
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# The usual address, all ASCII: what the checks below would accept, in one match (a sender checks
# every recipient, and the checks character by character cost ~50 us an address).
_PLAIN = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_HOST_LABEL}\.)+{_HOST_LABEL}")


class BadAddress(ValueError):
    """Why an address or display name cannot be used; the message completes "'x' ..."."""


def _control(text: str) -> bool:
    if text.isprintable():  # no character of the categories Cc, Cf, Zl or Zp (nor Zs but the space)
        return False
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def ascii_domain(domain: str) -> str:
    """A host name in its ASCII form (IDNA), or BadAddress."""
    try:
        ascii_form = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        raise BadAddress(f"has a domain '{domain}' that is not a valid internationalised domain name") from None
    labels = ascii_form.rstrip(".").split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise BadAddress(f"has a domain '{domain}' that is not a host name like example.org")
    if len(ascii_form) > 253:
        raise BadAddress("has a domain longer than 253 characters")
    return ascii_form


def mailbox(address: str, smtputf8: bool = True) -> str:
    """`address` as it goes into `RCPT TO` and `To` (its domain in ASCII), or BadAddress.
    `smtputf8`: whether the server accepts a non-ASCII local part."""
    if _PLAIN.fullmatch(address) and len(address) <= 254 and address.index("@") <= 64 \
            and not address.rpartition(".")[2].isdigit():
        return address
    return _checked_mailbox(address, smtputf8)


def _checked_mailbox(address: str, smtputf8: bool) -> str:
    if _control(address) or any(c.isspace() for c in address):
        raise BadAddress("contains white space or a control character")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise BadAddress("needs a name, '@' and a domain, e.g. naam@example.org")
    if len(local.encode("utf-8")) > 64:
        raise BadAddress("has more than 64 octets before the @")
    for atom in local.split("."):
        ascii_part = atom if atom.isascii() else "".join(c for c in atom if c.isascii()) or "x"
        if not atom or not _ATEXT.match(ascii_part):
            raise BadAddress("has a character before the @ that an address cannot hold (or two dots in a row)")
    if not local.isascii() and not smtputf8:
        raise BadAddress("has non-ASCII characters before the @, which the mail server does not accept "
                         "(it does not offer SMTPUTF8)")
    result = f"{local}@{ascii_domain(domain)}"
    if len(result.encode("utf-8")) > 254:
        raise BadAddress("is longer than 254 octets")
    return result


def display_name(name: str) -> str:
    """A name shown with an address (`From`, `To`), or BadAddress: one line, of reasonable length.
    Encoding and folding are left to the stdlib `email` policy."""
    if _control(name):
        raise BadAddress("contains a control character (a line break?)")
    if len(name) > MAX_NAME:
        raise BadAddress(f"is {len(name)} characters long, more than the {MAX_NAME} a name may have")
    return name
