"""What the admin API accepts and returns, as pydantic models.

Requests are strict (JSON types as declared, no unknown fields) and carry the registry's own
rules (``gateway.tenancy.identifiers``, which the service functions and the command line
check by too), with patterns and bounds that every store accepts, so whatever reaches a
service function is something it can store. Responses name their fields: a secret can only appear in
one where a field says so (a key or password shown once, when it is made).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from gateway.tenancy.identifiers import (
    ACCOUNT_PASSWORD,
    AUDIT_SUBJECT,
    CLIENT_ID,
    CLIENT_SECRET,
    DATABASE_NAME,
    MAX_ID,
    MAX_LIMIT,
    MAX_SECONDS,
    MAX_SYSTEMS,
    PASSWORD_DAYS,
    PEM_PRIVATE_KEY_PATTERN,
    POLL_SECONDS,
    PORTAL_NAME,
    PORTAL_PASSWORD,
    PORTAL_URL,
    PORTAL_USERNAME,
    PRIVATE_KEY,
    SCHOOL_NAME,
    SYSTEM_IDENTIFIER,
    TOKEN_NAME,
    TOKEN_URL,
    URL_PATTERN,
    USERNAME,
    VENDOR_NAME,
    Address,
    Currency,
    Duns,
    EstablishmentNumber,
    Language,
    LaNumber,
)
from gateway.tenancy.keys import normalise_key
from gateway.tenancy.model import AuthMethod, ChecksumPolicy, Interface
from gateway.tenancy.service import MAX_PORTAL_SUPPLIERS, portal_url_problem

_GUID = r"^\{?[0-9A-Fa-f]{8}(-?[0-9A-Fa-f]{4}){3}-?[0-9A-Fa-f]{12}\}?$"
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:(?P<second>[0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _integral(value: Any) -> Any:
    """JSON Schema counts 5.0 as an integer; so does the API (but not "5", nor true)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _decimal(value: Any) -> Any:
    """An integer in a URL is written in decimal digits only (not +1, 1_0 or 0x1)."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,20}", value):
        raise ValueError("not an integer in decimal digits")
    return value


# Integers in a JSON body: 5 or 5.0; in a URL: 5. (The bounds come before the validator, or
# pydantic's JSON Schema would lose them.)
_INTEGRAL = BeforeValidator(_integral)
UrlId = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_decimal)]
Id = Annotated[int, Field(ge=1, le=MAX_ID), _INTEGRAL]
PollSeconds = Annotated[int, Field(ge=POLL_SECONDS.low, le=POLL_SECONDS.high), _INTEGRAL]
PasswordDays = Annotated[int, Field(ge=PASSWORD_DAYS.low, le=PASSWORD_DAYS.high), _INTEGRAL]
#: How many entries a list returns at most.
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT), BeforeValidator(_decimal)]


def _guid(value: str) -> str:
    normalised = normalise_key(value)
    if normalised is None:
        raise ValueError("not a GUID")
    return normalised


Guid = Annotated[
    str, StringConstraints(min_length=32, max_length=38, pattern=_GUID), AfterValidator(_guid)
]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]


def _obeys(rule: Address) -> AfterValidator:
    """Checked by ``rule``, whose refusal says what is wrong (a port out of range, no host)
    rather than quoting a pattern."""

    def valid(value: str) -> str:
        problem = rule.problem(value)
        if problem is not None:
            raise ValueError(f"{rule.what} {problem}")
        return value

    return AfterValidator(valid)


def _url_schema(rule: Address) -> WithJsonSchema:
    """The document states the rule ``_obeys`` checks: ``URL_PATTERN`` matches just the
    addresses it accepts."""
    return WithJsonSchema({"type": "string", "maxLength": rule.max_length, "pattern": URL_PATTERN})


TokenUrl = Annotated[str, _obeys(TOKEN_URL), _url_schema(TOKEN_URL)]
PortalUrl = Annotated[str, _obeys(PORTAL_URL), _url_schema(PORTAL_URL)]
Password = Annotated[str, ACCOUNT_PASSWORD.constraints]
Secret = Annotated[str, CLIENT_SECRET.constraints]


def _rfc3339(value: Any) -> Any:
    """Only an RFC 3339 date-time (as the document says), not a number or a date alone."""
    if not isinstance(value, str):
        return value
    found = _DATE_TIME.fullmatch(value)
    if found is None:
        raise ValueError("not an RFC 3339 date-time, such as 2024-09-01T00:00:00Z")
    # A leap second, which Python's datetime cannot hold, is taken as the second before it.
    return value[:17] + "59" + value[19:] if found.group("second") == "60" else value


def _utc(value: datetime | None) -> datetime | None:
    """The time in UTC, if it can be one."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("the time is out of range in UTC") from None


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class ResponseModel(BaseModel):
    # What the store holds is returned as it is, even where a request would be refused today.
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- path and query parameters (strings in the URL, so not strict) --------------------------


class ParametersModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class VendorRef(ParametersModel):
    vendor_id: UrlId


class DatabaseRef(ParametersModel):
    database_id: UrlId


class AccountRef(ParametersModel):
    account_id: UrlId


class PortalRef(ParametersModel):
    portal_id: UrlId


class AuditQuery(ParametersModel):
    subject: Annotated[str, AUDIT_SUBJECT.constraints] | None = Field(
        None, description="Only entries about this subject, e.g. database:3 or account:name."
    )
    since: Annotated[datetime | None, BeforeValidator(_rfc3339), AfterValidator(_utc)] = Field(
        None, description="Only entries from this time on (RFC 3339, e.g. 2024-09-01T08:00:00Z)."
    )
    limit: Limit = Field(100, description="At most this many, newest first.")


class ImportQuery(ParametersModel):
    generate_keys: bool = Field(
        True,
        description="Generate a partner key for a new database whose row gives none "
        "(returned once); false refuses such rows.",
    )


# -- requests ------------------------------------------------------------------------------------


class NewVendor(_Request):
    # The document says it too: private_key_jwt takes a PEM private key.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "properties": {"auth_method": {"const": AuthMethod.PRIVATE_KEY_JWT.value}},
                "required": ["auth_method"],
            },
            "then": {"properties": {"secret": {"pattern": PEM_PRIVATE_KEY_PATTERN}}},
        }
    )

    name: Annotated[str, VENDOR_NAME.constraints]
    token_url: TokenUrl = Field(
        description="SIMS ID's token endpoint: http or https, without credentials in it."
    )
    client_id: Annotated[str, CLIENT_ID.constraints]
    secret: Secret = Field(
        description="The client secret, or the PEM private key (RSA, unencrypted) for "
        "private_key_jwt."
    )
    auth_method: AuthMethod = AuthMethod.CLIENT_SECRET_BASIC

    @model_validator(mode="after")
    def _private_key(self) -> Self:
        # The armour only: a key that does not load is the registry's to refuse (409).
        if self.auth_method is AuthMethod.PRIVATE_KEY_JWT and not re.search(
            PEM_PRIVATE_KEY_PATTERN, self.secret
        ):
            raise ValueError(f"{PRIVATE_KEY.what} {PRIVATE_KEY.problem('')}")
        return self


class VendorSecret(_Request):
    secret: Secret


class NewSchool(_Request):
    name: Annotated[str, SCHOOL_NAME.constraints]
    la_number: LaNumber
    establishment_number: EstablishmentNumber
    duns: Duns | None = None
    language: Language = "en"
    currency: Currency = "GBP"


class NewDatabase(_Request):
    school_id: Id
    vendor_id: Id
    name: Annotated[str, DATABASE_NAME.constraints]
    fng_key: Guid = Field(description="The key FNG issued for the database (X-PSK).")
    partner_key: Guid | None = Field(
        None, description="Our key for the database, if it has one already; else one is made."
    )


class RotateKey(_Request):
    key: Guid | None = Field(None, description="The next key, instead of a generated one.")


class PromoteKey(_Request):
    grace_seconds: Seconds | None = Field(
        None, description="How long callers may still use the old key (default: the setting)."
    )


class FngKey(_Request):
    key: Guid = Field(description="FNG's new key for the database.")


class NewAccount(_Request):
    username: Annotated[str, USERNAME.constraints]
    password: Password | None = Field(None, description="Its password; else one is generated.")


class Grant(_Request):
    database_id: Id
    # At least one, as the command line's --interface: checked below, so that the refusal
    # says so in words (the document says minItems).
    interfaces: list[Interface] = Field(
        max_length=len(Interface), json_schema_extra={"minItems": 1}
    )
    system_identifiers: list[Annotated[str, SYSTEM_IDENTIFIER.constraints]] = Field(
        default_factory=list,
        max_length=MAX_SYSTEMS,
        description="Payment systems the account may post journals for.",
    )

    @field_validator("interfaces")
    @classmethod
    def _some_interface(cls, interfaces: list[Interface]) -> list[Interface]:
        if not interfaces:
            raise ValueError(
                "a grant names at least one interface: give one or more of "
                + ", ".join(interface.value for interface in Interface)
            )
        return interfaces


class Revoke(_Request):
    database_id: Id
    interfaces: list[Interface] = Field(min_length=1, max_length=len(Interface))


class NewPassword(_Request):
    password: Password | None = Field(None, description="The new password; else one is generated.")
    overlap_seconds: Seconds | None = Field(
        None, description="How long the old password still works (default: the setting)."
    )


def _one_or_many(value: Any) -> Any:
    """A single DUNS number, as the API took it before portals served several suppliers."""
    return [value] if isinstance(value, str) else value


class NewPortal(_Request):
    # The document says it too: a plain http address only with allow_http.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"allow_http": {"const": True}}, "required": ["allow_http"]},
            "then": True,
            "else": {"properties": {"url": {"pattern": "^[Hh][Tt][Tt][Pp][Ss]://"}}},
        }
    )

    database_id: Id
    name: Annotated[str, PORTAL_NAME.constraints]
    url: PortalUrl = Field(
        description="The portal's EProcurementService address: https (plain http only with "
        "allow_http), without credentials in it."
    )
    username: Annotated[str, PORTAL_USERNAME.constraints]
    password: Annotated[str, PORTAL_PASSWORD.constraints]
    supplier_duns: Annotated[
        list[Duns],
        Field(min_length=1, max_length=MAX_PORTAL_SUPPLIERS),
        BeforeValidator(_one_or_many),
    ] = Field(
        description="The DUNS numbers (or GLNs) of the suppliers the portal serves: a "
        "price-comparison portal serves several. One number alone is taken as a list of one."
    )
    poll_seconds: PollSeconds = 300
    password_days: PasswordDays | None = Field(
        None, description="Change the password with ChangePassword this often."
    )
    enabled: bool = True
    allow_http: bool = Field(
        False,
        description="Accept a plain http address. For a sandbox or a test only: the "
        "standard secures portals with SSL.",
    )
    require_handshake_codes: bool = Field(
        True,
        description="Content orders must carry BuyersCodeForSupplier and "
        "SuppliersCodeForBuyer; false waives them for this portal.",
    )
    checksum_policy: ChecksumPolicy | None = Field(
        None,
        description="What a content order's wrong checksum does here: enforce (quarantined), "
        "warn (logged, delivered) or off; null follows the gateway's setting.",
    )

    @model_validator(mode="after")
    def _secure(self) -> Self:
        problem = portal_url_problem(self.url, self.allow_http)
        if problem is not None:
            raise ValueError(problem)
        return self


class PortalPassword(_Request):
    password: Annotated[str, PORTAL_PASSWORD.constraints]


class TokenName(_Request):
    name: Annotated[str, TOKEN_NAME.constraints]


# -- responses -----------------------------------------------------------------------------------


class Vendor(ResponseModel):
    id: int
    name: str
    token_url: str
    client_id: str
    auth_method: str
    created_at: datetime


class School(ResponseModel):
    id: int
    name: str
    la_number: str
    establishment_number: str
    duns: str | None
    language: str
    currency: str
    created_at: datetime


class Database(ResponseModel):
    id: int
    school_id: int
    vendor_id: int
    name: str
    fng_key_pending: bool = Field(description="FNG's next key is stored, waiting to be used.")
    created_at: datetime


class PartnerKey(ResponseModel):
    state: str = Field(description="active, next or retiring.")
    fingerprint: str = Field(description="The start of the key's SHA-256, never the key.")
    created_at: datetime
    retire_at: datetime | None


class GrantedInterface(ResponseModel):
    database_id: int
    interface: str


class Account(ResponseModel):
    id: int
    username: str
    enabled: bool
    old_password_until: datetime | None
    created_at: datetime
    grants: list[GrantedInterface]
    system_identifiers: list[str]


class Portal(ResponseModel):
    id: int
    database_id: int
    name: str
    url: str
    username: str
    supplier_duns: list[str] = Field(description="The suppliers the portal serves.")
    enabled: bool
    poll_seconds: int
    password_days: int | None
    allow_http: bool
    require_handshake_codes: bool
    checksum_policy: ChecksumPolicy | None = Field(description="null: the gateway's setting.")
    password_changed_at: datetime
    last_success_at: datetime | None
    failures: int
    last_error: str | None


class AuditEntry(ResponseModel):
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


class AdminToken(ResponseModel):
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class Created(ResponseModel):
    id: int


class CreatedDatabase(ResponseModel):
    id: int
    partner_key: str = Field(description="The database's active partner key: shown this once.")


class CreatedAccount(ResponseModel):
    id: int
    username: str
    password: str | None = Field(description="The generated password, shown this once.")


class NextKey(ResponseModel):
    database_id: int
    next_key: str = Field(description="Shown this once: enter it in FNG's set-up screen.")


class Promoted(ResponseModel):
    database_id: int
    old_key_refused_from: datetime


class PasswordChanged(ResponseModel):
    account_id: int
    old_password_refused_from: datetime
    password: str | None = Field(description="The generated password, shown this once.")


class Done(ResponseModel):
    subject: str = Field(description="What was changed, as the audit log names it.")
    done: str


class Reencrypted(ResponseModel):
    reencrypted: int = Field(description="How many stored secrets now use the newest key.")


class ImportCounts(ResponseModel):
    created: int
    updated: int
    unchanged: int


class GeneratedKey(ResponseModel):
    la_number: str
    establishment_number: str
    database: str
    database_id: int
    partner_key: str = Field(description="Shown this once.")


class Imported(ResponseModel):
    rows: int
    schools: ImportCounts
    databases: ImportCounts
    generated_keys: list[GeneratedKey]


class ProblemItem(ResponseModel):
    loc: list[str | int] = Field(description="Where: body, query or path, then the field.")
    msg: str
    type: str


class Problem(ResponseModel):
    """An RFC 9457 problem: every error the admin API returns."""

    type: str
    title: str
    status: int
    code: str
    requestId: str
    errors: list[ProblemItem] | None = None
