"""What a :class:`~gateway.tenancy.callers.CallerResolver` resolves an inbound call to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import SecretStr


class Interface(StrEnum):
    EJOURNAL = "ejournal"
    BUDGET = "budget"
    EPROC = "eproc"


class KeyState(StrEnum):
    ACTIVE = "active"
    NEXT = "next"
    RETIRING = "retiring"


class AuthMethod(StrEnum):
    CLIENT_SECRET_BASIC = "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post"
    PRIVATE_KEY_JWT = "private_key_jwt"


class ChecksumPolicy(StrEnum):
    """What an eBIS-XML order checksum mismatch does, in both directions (content orders in,
    authorised orders out); a portal's own, or the gateway's ``eproc.checksum_policy``."""

    #: The order is quarantined (FMS's own behaviour, and the default).
    ENFORCE = "enforce"
    #: The order is imported or sent, and the mismatch logged and counted.
    WARN = "warn"
    #: The checksum is not computed.
    OFF = "off"


@dataclass(frozen=True, slots=True)
class VendorCredentials:
    """A SIMS ID client registration: what it takes to get a token."""

    vendor_id: int
    token_url: str
    client_id: str
    auth_method: AuthMethod
    credential: SecretStr  # the client secret, or the private key for private_key_jwt

    @property
    def cache_key(self) -> str:
        return f"{self.vendor_id}:{self.client_id}:{self.token_url}"


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """One school's FNG database and the keys that reach it."""

    database_id: int
    database_name: str
    school_id: int
    school_name: str
    la_number: str
    establishment_number: str
    vendor: VendorCredentials
    fng_key: SecretStr  # FNG's key for the database, sent as X-PSK
    partner_key: SecretStr  # our active key for the database, sent as X-Client-Id
    #: Replacements on their way in, tried when FNG refuses the current keys.
    fng_key_next: SecretStr | None = None
    partner_key_next: SecretStr | None = None
    #: The partner key just retired, within its grace: FNG may not have the new one yet.
    partner_key_previous: SecretStr | None = None

    def key_pairs(self) -> list[tuple[SecretStr, SecretStr, bool, bool]]:
        """Every (FNG key, partner key) to try, current first, each with whether it uses the
        next FNG key and the next partner key."""
        fng = [(self.fng_key, False)]
        if self.fng_key_next is not None:
            fng.append((self.fng_key_next, True))
        partner = [(self.partner_key, False)]
        if self.partner_key_next is not None:
            partner.append((self.partner_key_next, True))
        if self.partner_key_previous is not None:
            partner.append((self.partner_key_previous, False))
        return [(f, p, f_next, p_next) for f, f_next in fng for p, p_next in partner]


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated inbound call: who, and which database it may reach."""

    account_id: int
    username: str
    target: DatabaseTarget
    system_identifiers: frozenset[str]
