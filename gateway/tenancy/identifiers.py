"""How the registry's values are written, once: an LA number, an establishment number, a
DUNS number (or a 13-digit GLN), a language and a currency code; names, addresses, secrets
and numbers, with their bounds.

The registry service (``gateway.tenancy.service``), the bulk import, the admin API's models
and the command line all check by these: a rule is written here and nowhere else. Each rule
says what is wrong with a value in words an operator can act on (``problem``), and carries
the same rule into pydantic (``constraints``), so the admin API's document states it too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import urlsplit

from pydantic import StringConstraints

from gateway.errors import RegistryError

LA_NUMBER: Final = re.compile(r"[0-9]{3}")
ESTABLISHMENT_NUMBER: Final = re.compile(r"[0-9]{4}")
#: A DUNS number has 9 digits; a GLN, which FMS takes in its place, 13.
DUNS: Final = re.compile(r"[0-9]{9}|[0-9]{13}")
LANGUAGE: Final = re.compile(r"[A-Za-z]{2}(-[A-Za-z]{2})?")
CURRENCY: Final = re.compile(r"[A-Z]{3}")


def _whole(pattern: re.Pattern[str]) -> StringConstraints:
    """The pattern as pydantic applies it: to the whole value."""
    return StringConstraints(pattern=f"^(?:{pattern.pattern})$")


LaNumber = Annotated[str, _whole(LA_NUMBER)]
EstablishmentNumber = Annotated[str, _whole(ESTABLISHMENT_NUMBER)]
Duns = Annotated[str, _whole(DUNS)]
Language = Annotated[str, _whole(LANGUAGE)]
Currency = Annotated[str, _whole(CURRENCY)]

# -- text --------------------------------------------------------------------------------------

#: What one line of text never holds: C0 and C1 control characters (a line feed, a carriage
#: return, an escape, DEL, NEL) and the Unicode line and paragraph separators.
_CONTROL: Final = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
#: One line of printable text (the pattern, as pydantic and JSON Schema apply it).
LINE_PATTERN: Final = rf"^[^{_CONTROL}]*$"
#: One line of printable text that is not blank.
TEXT_PATTERN: Final = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
#: A secret may span lines (a PEM private key) but holds no other control character.
SECRET_PATTERN: Final = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
#: An IPv6 address as RFC 3986 writes one (in brackets, in a URL).
_H16: Final = r"[0-9A-Fa-f]{1,4}"
_OCTET: Final = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_LS32: Final = rf"({_H16}:{_H16}|{_OCTET}(\.{_OCTET}){{3}})"
_IPV6: Final = "|".join(
    (
        rf"({_H16}:){{6}}{_LS32}",
        rf"::({_H16}:){{5}}{_LS32}",
        rf"({_H16})?::({_H16}:){{4}}{_LS32}",
        rf"(({_H16}:)?{_H16})?::({_H16}:){{3}}{_LS32}",
        rf"(({_H16}:){{0,2}}{_H16})?::({_H16}:){{2}}{_LS32}",
        rf"(({_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
        rf"(({_H16}:){{0,4}}{_H16})?::{_LS32}",
        rf"(({_H16}:){{0,5}}{_H16})?::{_H16}",
        rf"(({_H16}:){{0,6}}{_H16})?::",
    )
)
#: A host: a name of printable ASCII (no delimiter, bracket or backslash), or an IPv6 address
#: in brackets, with its zone if it has one (RFC 6874).
_HOST: Final = (
    r"([\x21\x22\x24-\x2e\x30-\x39\x3b-\x3e\x41-\x5a\x5e-\x7e]+"
    rf"|\[({_IPV6})(%25[A-Za-z0-9._~-]+)?\])"
)
#: A port, 1 to 65535 (leading zeros allowed, as RFC 3986 allows them); empty is none.
_PORT: Final = (
    r"(0*(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"
)
#: An http or https address of printable ASCII whose authority is a host and perhaps a port,
#: nothing else (no ``user:password@``).
URL_PATTERN: Final = rf"^[Hh][Tt][Tt][Pp][Ss]?://{_HOST}(:{_PORT})?([/?#][\x21-\x7e]*)?$"
#: The armour a PEM private key starts with (searched for, as JSON Schema does).
PEM_PRIVATE_KEY_PATTERN: Final = r"-----BEGIN (RSA )?PRIVATE KEY-----"

CONTROL_CHARACTER: Final = re.compile(f"[{_CONTROL}]")
#: Invisible and bidirectional-control characters (soft hyphen, zero-width, LRM/RLM, the
#: embeddings, overrides and isolates, word joiners, BOM) and spaces other than the space:
#: a name shown in the audit log holds none, so that none displays as another.
_INVISIBLE: Final = (
    r"\u00a0\u00ad\u061c\u115f\u1160\u1680\u180e\u2000-\u200f\u202a-\u202f"
    r"\u205f-\u206f\u3000\u3164\ufeff\ufff9-\ufffb"
)
#: An actor's name: one line of printable characters, none invisible, not blank.
ACTOR_PATTERN: Final = (
    rf"^[^{_CONTROL}{_INVISIBLE}]*[^\s{_CONTROL}{_INVISIBLE}][^{_CONTROL}{_INVISIBLE}]*$"
)


def check(rule: Rule, value: object, *, given_as: str | None = None) -> None:
    """``RegistryError`` (a refusal: exit code 1, HTTP 409) unless ``value`` keeps ``rule``;
    ``given_as`` names where it came from (a command line option), for the message."""
    problem = rule.problem(value)
    if problem is not None:
        where = f" ({given_as})" if given_as else ""
        raise RegistryError(f"{rule.what}{where} {problem}")


class Rule:
    """A rule for one kind of value: ``what`` names it in a sentence, ``problem`` says what
    is wrong with a value and what to give instead, or None."""

    what: str

    def problem(self, value: object) -> str | None:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Text(Rule):
    """One line of text, ``min_length`` to ``max_length`` characters, with no control
    character; never blank unless ``blank`` allows it (a password of spaces is one)."""

    what: str
    max_length: int
    min_length: int = 1
    blank: bool = False

    @property
    def pattern(self) -> str:
        return LINE_PATTERN if self.blank else TEXT_PATTERN

    @property
    def constraints(self) -> StringConstraints:
        return StringConstraints(
            min_length=self.min_length, max_length=self.max_length, pattern=self.pattern
        )

    def _sizes(self) -> str:
        return f"{self.min_length} to {self.max_length} characters on one line"

    def problem(self, value: object) -> str | None:
        if not isinstance(value, str):
            return f"must be text: give {self._sizes()}"
        if not value:
            return f"is empty: give {self._sizes()}"
        if CONTROL_CHARACTER.search(value):
            return (
                "holds a line break or a control character: give one line of printable text, "
                f"up to {self.max_length} characters"
            )
        if len(value) < self.min_length:
            return f"has {len(value)} characters: give at least {self.min_length}"
        if len(value) > self.max_length:
            return f"is {len(value)} characters long: give at most {self.max_length}"
        if not self.blank and not value.strip():
            return f"is blank: give {self._sizes()}"
        return None


@dataclass(frozen=True, slots=True)
class Matching(Rule):
    """A value written one way (``regex``, matched whole), described by ``allowed``."""

    what: str
    regex: str
    allowed: str

    @property
    def constraints(self) -> StringConstraints:
        return StringConstraints(pattern=f"^(?:{self.regex})$")

    def problem(self, value: object) -> str | None:
        if not isinstance(value, str) or not value:
            return f"is empty: it {self.allowed}"
        if re.fullmatch(self.regex, value) is None:
            return self.allowed
        return None


@dataclass(frozen=True, slots=True)
class Address(Rule):
    """An http or https URL (``URL_PATTERN``) of at most ``max_length`` characters, with no
    credentials in it: lists and the audit log show addresses, never secrets. It names a host
    (a name, or an IPv6 address in brackets) and, if it names a port, one from 1 to 65535, so
    that what would fail only when the gateway calls it is refused when it is given.
    ``example`` shows the form; ``credentials`` says where the credentials go instead."""

    what: str
    example: str
    credentials: str
    max_length: int = 500

    @property
    def constraints(self) -> StringConstraints:
        return StringConstraints(max_length=self.max_length, pattern=URL_PATTERN)

    def problem(self, value: object) -> str | None:
        if not isinstance(value, str) or not value:
            return f"is empty: give an https URL such as {self.example}"
        if len(value) > self.max_length:
            return f"is {len(value)} characters long: give at most {self.max_length}"
        scheme, separator, rest = value.partition("://")
        if not separator or scheme.lower() not in ("http", "https"):
            return f"is not an http or https URL: give one such as {self.example}"
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
        if "@" in authority:
            return (
                "holds credentials (user:password@), which lists and the audit log would show: "
                f"give the URL without them, and them as {self.credentials}"
            )
        if not authority:
            return f"names no host: give a URL such as {self.example}"
        if re.fullmatch(r"[\x21-\x7e]+", value) is None:
            return (
                "holds spaces or characters other than printable ASCII: give the URL "
                f"percent-encoded, such as {self.example}"
            )
        try:
            host = urlsplit(value).hostname
        except ValueError:  # a bracket left open, or what is in brackets is no IP address
            return (
                "has brackets that do not enclose an IPv6 address: give an IPv6 host in "
                f"brackets, such as [2001:db8::1], or a host name, as in {self.example}"
            )
        if not host:
            return f"names no host: give a URL such as {self.example}"
        port = authority.rpartition("]")[2] if authority.startswith("[") else authority
        port = port.partition(":")[2]
        if port and not (port.isascii() and port.isdigit()):
            return (
                "has a port that is not a number: give a port from 1 to 65535 after the host "
                f"name, or none for the scheme's own, as in {self.example}"
            )
        if port and not 1 <= int(port) <= 65535:
            return (
                f"is not usable: the port {int(port)} is not a port number (1 to 65535); give "
                "a port in that range, or none for the scheme's own"
            )
        if re.fullmatch(URL_PATTERN, value) is None:
            return (
                "names a host that is neither a host name (without brackets or a backslash) "
                f"nor an IPv6 address in brackets: give a URL such as {self.example}"
            )
        return None


@dataclass(frozen=True, slots=True)
class Secret(Rule):
    """A secret: 1 to ``max_length`` characters, several lines allowed (a PEM key), no other
    control character. Never echoed in a message."""

    what: str
    max_length: int = 16384

    @property
    def constraints(self) -> StringConstraints:
        return StringConstraints(min_length=1, max_length=self.max_length, pattern=SECRET_PATTERN)

    def problem(self, value: object) -> str | None:
        if not isinstance(value, str) or not value:
            return "is empty"
        if len(value) > self.max_length:
            return f"is {len(value)} characters long: give at most {self.max_length}"
        if re.fullmatch(SECRET_PATTERN, value) is None:
            return "holds a control character other than a line break or a tab"
        return None


@dataclass(frozen=True, slots=True)
class PrivateKey(Rule):
    """The private key a ``private_key_jwt`` vendor signs its assertions with: unencrypted
    RSA in PEM (authlib signs with RS256)."""

    what: str

    def problem(self, value: object) -> str | None:
        if isinstance(value, str) and (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----" in value or "Proc-Type: 4,ENCRYPTED" in value
        ):
            return (
                "is encrypted (protected by a passphrase): give the vendor's RSA private key "
                "unencrypted (openssl pkey -in KEY.pem -out PLAIN.pem decrypts it)"
            )
        if not isinstance(value, str) or re.search(PEM_PRIVATE_KEY_PATTERN, value) is None:
            return (
                "is not a PEM private key (-----BEGIN PRIVATE KEY----- …): private_key_jwt "
                "signs with the vendor's RSA private key"
            )
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(value.encode(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            return (
                "cannot be read as a PEM private key: give the vendor's RSA private key, "
                "unencrypted"
            )
        if not isinstance(key, RSAPrivateKey):
            return "is not an RSA key: private_key_jwt signs with RS256, an RSA private key"
        return None


@dataclass(frozen=True, slots=True)
class Bounded(Rule):
    """A number from ``low`` to ``high`` (a whole one when ``whole``), finite; ``unit`` and
    ``meaning`` finish the sentence."""

    what: str
    low: int | float
    high: int | float
    whole: bool = True
    unit: str = ""
    meaning: str = ""

    @property
    def range(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"from {self.low} to {self.high}{unit}{self.meaning}"

    def problem(self, value: object) -> str | None:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if (
            not number
            or (self.whole and not isinstance(value, int))
            or not math.isfinite(value)  # type: ignore[arg-type]
            or not self.low <= value <= self.high  # type: ignore[operator]
        ):
            kind = "a whole number" if self.whole else "a number"
            return f"must be {kind} {self.range}"
        return None


@dataclass(frozen=True, slots=True)
class Actor(Rule):
    """Who the audit log records: one line of printable characters (no control, format or
    separator character but the space), at most ``max_length``. The audit table prints one
    line an entry: a line break in a name would forge entries."""

    what: str
    max_length: int

    @property
    def constraints(self) -> StringConstraints:
        return StringConstraints(min_length=1, max_length=self.max_length, pattern=ACTOR_PATTERN)

    def problem(self, value: object) -> str | None:
        if not isinstance(value, str) or not value:
            return f"is empty: give a name of 1 to {self.max_length} printable characters"
        if len(value) > self.max_length:
            return f"is {len(value)} characters long: give at most {self.max_length}"
        if not value.isprintable() or not value.strip():
            return (
                "must be one line of printable characters (no line break, control or "
                "invisible character)"
            )
        return None


# -- the registry's values -------------------------------------------------------------------

#: Row ids: PostgreSQL's INTEGER.
MAX_ID: Final = 2**31 - 1
#: How many entries a list returns at most.
MAX_LIMIT: Final = 1000
#: The longest grace or overlap an operator may give (ten years).
MAX_SECONDS: Final = 10 * 366 * 86400.0
#: The audit log's actor column; a command line's actor is ``cli:NAME``.
MAX_ACTOR: Final = 100

ID: Final = Bounded("an id", 1, MAX_ID)
LIMIT: Final = Bounded("the number of entries", 1, MAX_LIMIT)
SECONDS: Final = Bounded(
    "a time", 0, int(MAX_SECONDS), whole=False, unit="seconds", meaning=" (ten years)"
)

VENDOR_NAME: Final = Text("the vendor's name", 100)
TOKEN_URL: Final = Address(
    "SIMS ID's token URL",
    example="https://simsid.example/connect/token",
    credentials="the vendor's client id and secret",
)
CLIENT_ID: Final = Text("the vendor's client id", 200)
CLIENT_SECRET: Final = Secret("the vendor's secret")
PRIVATE_KEY: Final = PrivateKey("the vendor's private key")

SCHOOL_NAME: Final = Text("the school's name", 200)
DATABASE_NAME: Final = Text("the database's name", 100)

USERNAME: Final = Matching(
    "the account's user name",
    r"[A-Za-z0-9._@+-]{1,100}",
    "must be 1 to 100 ASCII letters, digits and . _ @ + - (no space)",
)
ACCOUNT_PASSWORD: Final = Text("the account's password", 256, min_length=12, blank=True)
SYSTEM_IDENTIFIER: Final = Text("a payment system identifier", 100)
#: The most payment systems one grant names.
MAX_SYSTEMS: Final = 100

PORTAL_NAME: Final = Matching(
    "the portal's name", r"[a-z0-9-]{1,40}", "must be 1 to 40 lower-case letters, digits or hyphens"
)
PORTAL_URL: Final = Address(
    "the portal's URL",
    example="https://portal.example/EProcurementService.asmx",
    credentials="the portal's username and password",
)
PORTAL_USERNAME: Final = Text("the portal's username", 50)
PORTAL_PASSWORD: Final = Text("the portal's password", 256, blank=True)
POLL_SECONDS: Final = Bounded(
    "the portal's poll interval",
    10,
    7 * 86400,
    unit="seconds",
    meaning=": a portal is polled at least 10 seconds apart, and at least once a week",
)
PASSWORD_DAYS: Final = Bounded(
    "the portal password's life",
    60,
    3660,
    unit="days",
    meaning=" (the standard: at least 60; at most ten years)",
)

AUDIT_SUBJECT: Final = Text("the audit subject", 200)
#: An operator's token name: the admin API's actor is ``admin:NAME``, within MAX_ACTOR.
TOKEN_NAME: Final = Actor("an operator's name", MAX_ACTOR - len("admin:"))
#: The name a command records as ``cli:NAME``.
CLI_ACTOR: Final = Actor("the name recorded in the audit log", MAX_ACTOR - len("cli:"))

# -- schools' codes and keys, as rules (the same patterns, for messages that name an option) ----

LA: Final = Matching("the LA number", LA_NUMBER.pattern, "must be 3 digits")
ESTABLISHMENT: Final = Matching(
    "the establishment number", ESTABLISHMENT_NUMBER.pattern, "must be 4 digits"
)
DUNS_NUMBER: Final = Matching("the DUNS number", DUNS.pattern, "must be 9 digits (or a GLN, 13)")
LANGUAGE_CODE: Final = Matching(
    "the language", LANGUAGE.pattern, "must be a code such as en or en-GB"
)
CURRENCY_CODE: Final = Matching(
    "the currency", CURRENCY.pattern, "must be a three-letter code such as GBP"
)


@dataclass(frozen=True, slots=True)
class Guid(Rule):
    """A key: a GUID, such as 0f8fad5b-d9cb-469f-a165-70867728950e (any case, braces
    allowed)."""

    what: str

    def problem(self, value: object) -> str | None:
        from gateway.tenancy.keys import normalise_key

        if not isinstance(value, str) or normalise_key(value) is None:
            return "must be a GUID, such as 0f8fad5b-d9cb-469f-a165-70867728950e"
        return None


FNG_KEY: Final = Guid("the FNG key")
PARTNER_KEY: Final = Guid("the partner key")
