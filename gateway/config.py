"""Settings: read once at start-up, typed, frozen, passed down.

Sources, highest first: keyword arguments (tests), the environment (``FNG_GATEWAY_…``,
nested with ``__``, e.g. ``FNG_GATEWAY_FNG__BASE_URL``), then a TOML file named by
``FNG_GATEWAY_CONFIG_FILE``. Nothing below ``gateway.app`` reads the environment.

Nothing is ignored in silence: a ``FNG_GATEWAY_`` variable that names no setting (a typo),
a config file that does not exist or is not TOML, and a key of the file that names no setting
are errors that say what is wrong.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import SplitResult, parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from gateway.errors import ConfigurationError

PREFIX: Final = "FNG_GATEWAY_"
#: Variables of the prefix that are not settings: read before settings are (the event loop)
#: or to find them (the config file).
OTHER_VARIABLES: Final = frozenset({"FNG_GATEWAY_CONFIG_FILE", "FNG_GATEWAY_EVENT_LOOP"})
#: The driver the gateway uses for each kind of store.
_DRIVERS: Final = {"postgresql": "asyncpg", "postgres": "asyncpg", "sqlite": "aiosqlite"}
#: What Kubernetes' service links add for a Service named fng-gateway (the port's own link is
#: refused by the port's validator, with what to do).
_SERVICE_LINK: Final = re.compile(r"^FNG_GATEWAY_(SERVICE_HOST|SERVICE_PORT(_.*)?|PORT_\d+_.*)$")
#: The event loops FNG_GATEWAY_EVENT_LOOP may name (read by the command line before settings).
EVENT_LOOPS: Final = ("uvloop", "asyncio")


def check_event_loop(loop: str | None) -> None:
    """FNG_GATEWAY_EVENT_LOOP, unset or one the gateway runs."""
    if loop and loop not in EVENT_LOOPS:
        raise ConfigurationError(
            f"FNG_GATEWAY_EVENT_LOOP={loop} is not an event loop the gateway runs: write "
            f"{' or '.join(EVENT_LOOPS)} ({EVENT_LOOPS[0]}, the default, if it is installed), "
            "or unset it"
        )


#: Upper bounds of durations and sizes: a setting beyond them is a mistake (``inf`` drain
#: seconds would make SIGTERM never stop the gateway), refused at start.
_MINUTE: Final = 60.0
_HOUR: Final = 3600.0
_DAY: Final = 86400.0
_YEAR: Final = 365 * _DAY
_MIB: Final = 1024 * 1024
_GIB: Final = 1024 * _MIB

#: How long the gateway waits for PostgreSQL to accept a connection, unless the database URL
#: says otherwise (``?timeout=SECONDS``, asyncpg's name); the most it may say.
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
MAX_CONNECT_TIMEOUT: Final = 300.0
#: asyncpg's SSL modes (the ``ssl`` option of a PostgreSQL URL).
SSL_MODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
#: The options of a PostgreSQL URL's query that asyncpg takes, through SQLAlchemy.
_POSTGRES_OPTIONS: Final = frozenset(
    {
        "ssl",
        "timeout",
        "host",
        "target_session_attrs",
        "passfile",
        "krbsrvname",
        "gsslib",
        "prepared_statement_cache_size",
    }
)
#: libpq's options (what psql and psycopg take) that asyncpg spells otherwise or does not
#: take in a URL: what to write instead.
_LIBPQ_OPTIONS: Final = {
    "sslmode": "asyncpg calls it ssl (ssl=require)",
    "connect_timeout": "asyncpg calls it timeout (timeout=10, in seconds)",
    "sslrootcert": (
        "asyncpg reads the root certificate from the file PGSSLROOTCERT names, or "
        "~/.postgresql/root.crt"
    ),
    "sslcert": "asyncpg reads the client certificate from ~/.postgresql/postgresql.crt",
    "sslkey": "asyncpg reads the client key from ~/.postgresql/postgresql.key",
    "dbname": "put the database name in the path (postgresql://user@host:5432/NAME)",
    "user": "put the user before the host (postgresql://USER@host:5432/name)",
    "password": "put the password after the user (postgresql://user:PASSWORD@host:5432/name)",
    "port": "put the port after the host (postgresql://user@host:PORT/name)",
}
#: What a Redis URL's query may hold: the options redis-py reads from a URL.
_REDIS_OPTIONS: Final = frozenset(
    {
        "db",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "health_check_interval",
        "retry_on_timeout",
        "client_name",
        "protocol",
    }
)
#: ... and, for rediss:// (TLS), how the server's certificate is checked.
_REDIS_TLS_OPTIONS: Final = frozenset(
    {
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_check_hostname",
        "ssl_min_version",
    }
)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class XmlLimits(_Section):
    """Bounds on every XML document the gateway accepts."""

    max_bytes: int = Field(32 * _MIB, ge=1024, le=_GIB)
    max_depth: int = Field(64, ge=4, le=256)
    #: Elements in one document (a 50,000-line journal has about 50,000).
    max_elements: int = Field(1_000_000, ge=16, le=100_000_000)
    #: Attributes in one document, counted conservatively before parsing (every "=").
    max_attributes: int = Field(4_000_000, ge=16, le=400_000_000)
    body_timeout_seconds: float = Field(60.0, gt=0, le=_HOUR, allow_inf_nan=False)
    #: Journals sent as text larger than this are streamed (validated and hashed as they are
    #: parsed, never held as a tree: memory under 3 times the journal, but about a fifth more
    #: CPU); smaller ones are read as a tree, which is faster. 0 streams every one.
    stream_above_bytes: int = Field(_MIB, ge=0, le=_GIB)


#: An HTTP header's name: a token (RFC 9110), letters, digits and ``!#$%&'*+-.^_`|~``.
_HEADER_NAME: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _check_authority(parts: SplitResult, forms: str) -> None:
    """A URL's host and port usable, or a ValueError ending with ``forms`` (what to write)."""
    try:
        port = parts.port
    except ValueError:  # not a number, or above 65535
        port = 0
    if port == 0:
        raise ValueError(f"its port is not a port number (1 to 65535): {forms}")
    if not parts.hostname:
        raise ValueError(f"it names no host: {forms}")


def check_http_url(value: str) -> str:
    """An upstream's base URL: http:// or https://, naming a host, with no user or password
    in it (the messages never quote it, as it might hold one)."""
    text = value.strip()
    forms = "write http://host:port/path or https://host/path"
    if not text:
        raise ValueError(f"it is empty: {forms}")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or "://" not in text:
        raise ValueError(f"it is not an http:// or https:// URL: {forms}")
    if "@" in parts.netloc:
        raise ValueError(
            "it holds a user name or password (user:password@), which the gateway would not "
            "send and which would show in logs: remove it from the URL"
        )
    _check_authority(parts, forms)
    if parts.query or parts.fragment:
        raise ValueError(f"it has a query or fragment (? or #), which a base URL cannot: {forms}")
    return text.rstrip("/")


class FngPaths(_Section):
    get_banks: str = "/api/JournalInterface/GetBanks"
    post_journals: str = "/api/JournalInterface/PostJournals"
    post_audit_message: str = "/api/JournalInterface/PostAuditMessage"
    export_gl_account: str = "/api/BudgetInterface/ExportGlAccount"
    export_financial_years: str = "/api/BudgetInterface/ExportFinancialYears"
    import_budget: str = "/api/BudgetInterface/ImportBudget"
    post_document: str = "/api/EProcurement/Documents"
    authorised_orders: str = "/api/EProcurement/AuthorisedOrders"
    mark_order_sent: str = "/api/EProcurement/AuthorisedOrders/{id}/Sent"

    @field_validator("*")
    @classmethod
    def _a_path(cls, value: str) -> str:
        text = value.strip()
        if not text.startswith("/") or any(c.isspace() for c in text):
            raise ValueError(
                "not a path: write one starting with '/' (such as /api/JournalInterface/GetBanks)"
                ", with no spaces, or unset it for the default"
            )
        return text


class FngHeaders(_Section):
    psk: str = "X-PSK"
    client_id: str = "X-Client-Id"
    scope: str = "scope"
    request_id: str = "X-Request-Id"

    @field_validator("*")
    @classmethod
    def _a_header_name(cls, value: str) -> str:
        text = value.strip()
        if not _HEADER_NAME.match(text):
            raise ValueError(
                "not an HTTP header name: write letters, digits and - (such as X-PSK), with no "
                "spaces or colon, or unset it for the default"
            )
        return text


class FngSettings(_Section):
    base_url: str = "http://127.0.0.1:8081/fng"
    connect_timeout_seconds: float = Field(5.0, gt=0, le=_MINUTE * 5, allow_inf_nan=False)
    timeout_seconds: float = Field(30.0, gt=0, le=_HOUR, allow_inf_nan=False)
    max_connections: int = Field(100, ge=1, le=10_000)
    read_retries: int = Field(2, ge=0, le=5)
    paths: FngPaths = FngPaths()
    headers: FngHeaders = FngHeaders()

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return check_http_url(value)


class SimsIdSettings(_Section):
    scope: str = "fngapi"
    timeout_seconds: float = Field(10.0, gt=0, le=_MINUTE * 5, allow_inf_nan=False)

    @field_validator("scope")
    @classmethod
    def _a_scope(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(
                "it is empty: write the scope SIMS ID grants FNG's API (fngapi), or unset it"
            )
        return value.strip()

    refresh_before_seconds: float = Field(120.0, ge=0, le=_DAY, allow_inf_nan=False)
    refresh_jitter_seconds: float = Field(30.0, ge=0, le=_HOUR, allow_inf_nan=False)
    retry_seconds: float = Field(5.0, gt=0, le=_HOUR, allow_inf_nan=False)


class LedgerSettings(_Section):
    wait_seconds: float = Field(20.0, ge=0, le=_HOUR, allow_inf_nan=False)
    lease_seconds: float = Field(90.0, gt=0, le=_DAY, allow_inf_nan=False)


class BudgetSettings(_Section):
    #: How long a database's chart of accounts and financial years are reused.
    cache_seconds: float = Field(300.0, ge=0, le=_DAY, allow_inf_nan=False)
    #: Official schemas, when an operator has them, used instead of the gateway's own.
    chart_schema: Path | None = None
    years_schema: Path | None = None
    import_schema: Path | None = None


class EprocSettings(_Section):
    #: Poll supplier portals (every replica runs the scheduler; portals are leased).
    enabled: bool = True
    #: How often the scheduler looks for portals due.
    tick_seconds: float = Field(1.0, gt=0, le=_MINUTE, allow_inf_nan=False)
    #: Portals polled at once by one replica.
    max_concurrent_portals: int = Field(8, ge=1, le=1000)
    #: A portal call's timeout, and the most a whole poll of one portal may take.
    call_timeout_seconds: float = Field(30.0, gt=0, le=_HOUR, allow_inf_nan=False)
    poll_timeout_seconds: float = Field(300.0, gt=0, le=_DAY, allow_inf_nan=False)
    #: After a failed poll the next waits twice as long each time, up to this.
    max_backoff_seconds: float = Field(900.0, gt=0, le=7 * _DAY, allow_inf_nan=False)
    #: When the last good poll is older than this, FetchIndexFromDate is asked too, to warn
    #: of documents another client processed in the meantime.
    recover_after_seconds: float = Field(3600.0, gt=0, le=30 * _DAY, allow_inf_nan=False)
    #: How often orders authorised in FNG are looked for.
    orders_seconds: float = Field(60.0, gt=0, le=_DAY, allow_inf_nan=False)
    #: The BASDA eBIS-XML 3.09/3.10 schemas (Order-v3.xsd, Invoice-v3.xsd), if the operator
    #: has them; documents are then validated against them as well as the profiles.
    ebis_schema_dir: Path | None = None
    #: What an order checksum FMS would refuse does, coming in and going out, for portals
    #: without a policy of their own: enforce (quarantine the order, as FMS did), warn
    #: (import or send it; log and count the mismatch) or off (not computed).
    checksum_policy: Literal["enforce", "warn", "off"] = "enforce"
    #: Content orders must carry BuyersCodeForSupplier and SuppliersCodeForBuyer (FMS's
    #: import mapping), unless a portal waives it because it relies on the DUNS handshake.
    require_handshake_codes: bool = True


class KeySettings(_Section):
    #: How long a partner key stays accepted from callers after its successor is promoted.
    retire_grace_seconds: float = Field(14 * _DAY, ge=0, le=_YEAR, allow_inf_nan=False)
    #: How long an account's old password stays accepted after a change.
    password_overlap_seconds: float = Field(14 * _DAY, ge=0, le=_YEAR, allow_inf_nan=False)


class ShutdownSettings(_Section):
    """On SIGTERM: readiness answers 503 at once and the scheduler takes no more work; after
    ``drain_seconds`` (for load balancers to stop sending) the listener closes and calls in
    flight have ``grace_seconds`` to finish."""

    drain_seconds: float = Field(5.0, ge=0, le=_MINUTE * 10, allow_inf_nan=False)
    grace_seconds: float = Field(25.0, ge=0, le=_HOUR, allow_inf_nan=False)


class AuthSettings(_Section):
    """Failed logins are counted three ways over a sliding window; each limit reached refuses
    only what it counts, until enough of its failures are older than the window. 0: no limit."""

    registry_cache_seconds: float = Field(5.0, ge=0, le=_HOUR, allow_inf_nan=False)
    #: Failed logins of one account from one client address: the account is then refused
    #: from that address; other accounts there, and the account elsewhere, are not.
    max_failures: int = Field(10, ge=0, le=1_000_000)
    #: Failed logins of one account from all addresses together: the account is then
    #: refused from every address.
    max_account_failures: int = Field(50, ge=0, le=1_000_000)
    #: Failed logins from one address, all accounts together: the address is then refused.
    #: Far above ``max_failures``, so that one account's mistakes never refuse its neighbours.
    max_address_failures: int = Field(100, ge=0, le=1_000_000)
    failure_window_seconds: float = Field(900.0, gt=0, le=7 * _DAY, allow_inf_nan=False)

    @model_validator(mode="after")
    def _address_limit_above_one_account(self) -> AuthSettings:
        if 0 < self.max_address_failures <= self.max_failures:
            raise ValueError(
                f"max_address_failures ({self.max_address_failures}) must be above "
                f"max_failures ({self.max_failures}), or one account's failed logins "
                "would refuse every account at its address"
            )
        return self


class AdminSettings(_Section):
    """The operators' HTTP API under /admin/ (bearer tokens: ``fng-gateway admin-tokens``)."""

    #: Off unless asked for: the API can change every school's keys and accounts.
    enabled: bool = False
    #: The largest request body it reads (a CSV import of schools is the largest).
    max_body_bytes: int = Field(4 * _MIB, ge=1024, le=256 * _MIB)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FNG_GATEWAY_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)

    @field_validator("host")
    @classmethod
    def _an_address(cls, value: str) -> str:
        """An empty address would listen on every interface: refused, not taken so."""
        if not value.strip():
            raise ValueError(
                "an empty address, which would listen on every interface: give one, such as "
                "127.0.0.1, or 0.0.0.0 for every interface on purpose; or unset it"
            )
        return value.strip()

    #: Processes of ``serve`` sharing its listening socket (``serve --workers``).
    workers: int = Field(1, ge=1, le=256)

    @field_validator("port", mode="before")
    @classmethod
    def _not_a_service_link(cls, value: object) -> object:
        if isinstance(value, str) and value.startswith("tcp://"):
            # Kubernetes sets FNG_GATEWAY_PORT=tcp://… for a Service named fng-gateway.
            raise ValueError(
                "this is a Kubernetes service link, not a port: set enableServiceLinks: false "
                "on the pod, or give the Service another name"
            )
        return value

    database_url: str = "sqlite+aiosqlite:///fng-gateway.db"

    @field_validator("database_url")
    @classmethod
    def _usable_store(cls, value: str) -> str:
        """PostgreSQL through asyncpg, SQLite through aiosqlite: ``postgresql://`` and
        ``sqlite://`` mean those; another driver is refused, saying what to write, and so is
        a URL asyncpg or SQLite could not use (see :func:`check_database_url`)."""
        return check_database_url(value)

    #: Redis (redis://host:6379/0, rediss://… over TLS), shared by replicas: the token and
    #: read caches, locks, and failed-login counts. Without it they live in the process.
    redis_url: str | None = None

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_redis_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_url")
    @classmethod
    def _usable_redis(cls, value: str | None) -> str | None:
        return None if value is None else check_redis_url(value)

    master_keys: SecretStr | None = None
    master_keys_file: Path | None = None

    @field_validator("master_keys", "master_keys_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable (``FNG_GATEWAY_MASTER_KEYS=``) counts as unset."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if isinstance(text, str) and not text.strip() else value

    #: How often a master keys file is checked for changes.
    master_keys_reload_seconds: float = Field(10.0, gt=0, le=_HOUR, allow_inf_nan=False)
    auto_migrate: bool = True
    #: Networks whose X-Forwarded-* headers count: a JSON list, or separated by commas.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _list_of_networks(cls, value: object) -> object:
        """A JSON list (``["10.0.0.0/8"]``, the README's form and the Helm chart's) or the
        networks separated by commas or spaces (``10.0.0.0/8,192.168.0.0/16``)."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text.startswith("["):
            return tuple(part for part in re.split(r"[,\s]+", text) if part)
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(
                'this is not a JSON list: write the networks as ["10.0.0.0/8", '
                '"192.168.0.0/16"], or separated by commas'
            ) from None

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network: write addresses (10.1.2.3) or "
                    "networks (10.0.0.0/8), separated by commas or as a JSON list"
                ) from None
        return tuple(item.strip() for item in value)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    xml: XmlLimits = XmlLimits()
    fng: FngSettings = FngSettings()
    simsid: SimsIdSettings = SimsIdSettings()
    ledger: LedgerSettings = LedgerSettings()
    budget: BudgetSettings = BudgetSettings()
    eproc: EprocSettings = EprocSettings()
    keys: KeySettings = KeySettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    auth: AuthSettings = AuthSettings()
    admin: AdminSettings = AdminSettings()

    @model_validator(mode="after")
    def _one_source_of_master_keys(self) -> Settings:
        if self.master_keys is not None and self.master_keys_file is not None:
            # Raised as it is (not a ValueError): one sentence naming both, not one setting.
            raise ConfigurationError(
                f"{_given_as('master_keys')} and {_given_as('master_keys_file')} are both set, "
                "and the master keys are read from one place only: unset one of them"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        check_environment(os.environ)
        sources: list[PydanticBaseSettingsSource] = [init_settings, _Environment(settings_cls)]
        config_file = os.environ.get("FNG_GATEWAY_CONFIG_FILE")
        if config_file:
            sources.append(_toml_source(settings_cls, Path(config_file)))
        return tuple(sources)


class _Environment(EnvSettingsSource):
    """The environment, as pydantic-settings reads it, but a value it cannot decode (JSON it
    expected) is a :class:`ConfigurationError` naming the variable, not a SettingsError."""

    def __call__(self) -> dict[str, Any]:
        try:
            return super().__call__()
        except SettingsError as exc:
            found = re.search(r'field "(\w+)"', str(exc))
            variable = f"{PREFIX}{found.group(1).upper()}" if found else "an FNG_GATEWAY_ variable"
            raise ConfigurationError(
                f"{variable} (or a variable inside it, {variable}__…) is not valid JSON: set "
                "each setting with a variable of its own, as the README's settings table lists"
            ) from None


def _given_as(name: str) -> str:
    """How a top-level setting was most likely given: its variable, or its key in the config
    file when the variable is not set and a config file is."""
    variable = f"{PREFIX}{name.upper()}"
    config_file = os.environ.get("FNG_GATEWAY_CONFIG_FILE")
    if variable not in os.environ and config_file:
        return f"{name} in {config_file}"
    return variable


def _toml_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    if path.is_dir():
        raise ConfigurationError(
            f"the config file {path} (FNG_GATEWAY_CONFIG_FILE) is a directory: give the path "
            "of a TOML file, or unset FNG_GATEWAY_CONFIG_FILE"
        )
    if not path.is_file():
        raise ConfigurationError(
            f"the config file {path} (FNG_GATEWAY_CONFIG_FILE) does not exist: give the path "
            "of a TOML file, or unset FNG_GATEWAY_CONFIG_FILE"
        )
    try:
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"the config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"the config file {path} is not UTF-8 text (TOML is written in UTF-8): give "
            "FNG_GATEWAY_CONFIG_FILE the path of a TOML file"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"the config file {path} cannot be read ({exc.strerror}): check its permissions"
        ) from None


_DATABASE_URL_FORMS: Final = (
    "write postgresql://user:password@host:5432/name or sqlite:///path/to/file.db"
)


def check_database_url(value: str) -> str:
    """The database URL with its driver written out (``postgresql+asyncpg://``,
    ``sqlite+aiosqlite://``), or a ValueError saying what is wrong with it and what to
    write: a driver the gateway does not use, a URL that cannot be read, a port out of range,
    a PostgreSQL URL naming no database or no user, a query option asyncpg does not take, an
    in-memory SQLite database. Messages never quote the URL (it may hold a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    scheme, separator, rest = value.strip().partition("://")
    if not separator:
        raise ValueError(f"not a database URL: {_DATABASE_URL_FORMS}")
    backend, _, driver = scheme.lower().partition("+")
    wanted = {"postgresql": "asyncpg", "postgres": "asyncpg", "sqlite": "aiosqlite"}.get(backend)
    if wanted is None:
        raise ValueError(
            f"{scheme}:// is not a store the gateway can use: write postgresql://… "
            "(PostgreSQL) or sqlite:///… (SQLite)"
        )
    if driver not in ("", wanted):
        raise ValueError(
            f"the gateway reaches {backend} through {wanted}, not {driver}: write "
            f"{'postgresql' if wanted == 'asyncpg' else 'sqlite'}://… or "
            f"…+{wanted}://…"
        )
    normalized = f"{'postgresql' if wanted == 'asyncpg' else 'sqlite'}+{wanted}://{rest}"
    try:
        parsed = make_url(normalized)
    except ValueError:  # the port, as SQLAlchemy reads it, is not a number
        raise ValueError(
            "its host and port cannot be read: write host:5432, with an IPv6 address in "
            "brackets ([::1]:5432)"
        ) from None
    except ArgumentError:
        raise ValueError(f"this cannot be read as a database URL: {_DATABASE_URL_FORMS}") from None
    if wanted == "aiosqlite":
        _check_sqlite_url(parsed.host, parsed.port, parsed.database, dict(parsed.query))
    else:
        _check_postgres_url(parsed.port, parsed.username, parsed.database, dict(parsed.query))
    return normalized


def _check_sqlite_url(
    host: str | None, port: int | None, database: str | None, query: Mapping[str, Any]
) -> None:
    if host or port:
        raise ValueError(
            "a SQLite URL names a file, not a host: write sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db (three slashes, then the path)"
        )
    memory = (
        database in (None, "", ":memory:")
        or query.get("mode") == "memory"
        or (database or "").startswith("file::memory:")
    )
    if memory:
        raise ValueError(
            "this is an in-memory SQLite database, which lasts only as long as one process, "
            "and the gateway needs a store that outlives it: give the path of a file "
            "(sqlite:///path/to/fng-gateway.db), or a PostgreSQL URL"
        )
    if query:
        options = ", ".join(f"{name}=" for name in sorted(query))
        raise ValueError(
            f"a SQLite URL takes no options, and the gateway would ignore {options}: remove "
            "everything from the '?' (sqlite:///path/to/fng-gateway.db)"
        )


def _check_port(port: object, where: str) -> None:
    try:
        number = int(str(port))
    except ValueError:
        number = -1
    if not 1 <= number <= 65535:
        raise ValueError(f"the port {port} {where} is not a port number (1 to 65535): correct it")


def _check_postgres_url(
    port: int | None, user: str | None, database: str | None, query: Mapping[str, Any]
) -> None:
    if port is not None:
        _check_port(port, "of the database URL")
    for name, value in query.items():
        if name in _LIBPQ_OPTIONS:
            raise ValueError(
                f"the option {name}= is not one asyncpg understands: {_LIBPQ_OPTIONS[name]}"
            )
        if name not in _POSTGRES_OPTIONS:
            raise ValueError(
                f"the option {name}= is not one asyncpg understands: it takes "
                f"{', '.join(sorted(_POSTGRES_OPTIONS))}"
            )
        if name != "host" and not isinstance(value, str):
            raise ValueError(f"the option {name}= is given more than once: give it once")
    for host in _values(query.get("host")):
        address, colon, host_port = host.rpartition(":")
        if colon and not address.endswith("]") and ":" in address:
            continue  # an IPv6 address without a port
        if colon and host_port:
            _check_port(host_port, f"of the host {address} in the database URL")
    ssl = query.get("ssl")
    if ssl is not None and ssl not in SSL_MODES:
        raise ValueError(
            f"ssl={ssl} is not an SSL mode asyncpg knows: write one of {', '.join(SSL_MODES)}"
        )
    timeout = query.get("timeout")
    if timeout is not None:
        try:
            seconds = float(timeout)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= MAX_CONNECT_TIMEOUT:
            raise ValueError(
                f"timeout={timeout} is not a number of seconds to wait for a connection, "
                f"above 0 and at most {MAX_CONNECT_TIMEOUT:g}: correct it"
            )
    cache = query.get("prepared_statement_cache_size")
    if cache is not None and not cache.isdigit():
        raise ValueError(
            f"prepared_statement_cache_size={cache} is not a number of statements: correct it"
        )
    if not database:
        raise ValueError(
            "it names no database, and asyncpg would then use the one named after the user: "
            "name it at the end (postgresql://user:password@host:5432/NAME)"
        )
    if not user:
        raise ValueError(
            "it names no user, and asyncpg would then log in as this machine's user: name it "
            "before the host (postgresql://USER:password@host:5432/name)"
        )


def _values(value: object) -> tuple[str, ...]:
    """A query option's values: SQLAlchemy gives one as a string, several as a tuple."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple | list):
        return tuple(str(item) for item in value)
    return ()


_REDIS_FORMS: Final = "write redis://host:6379/0, or rediss://host:6379/0 for TLS"


def check_redis_url(value: str) -> str:
    """The Redis URL, or a ValueError saying what is wrong with it and what to write (never
    quoting it: it may hold a password)."""
    text = value.strip()
    if "://" not in text:
        raise ValueError(f"not a Redis URL: {_REDIS_FORMS}")
    parts: SplitResult = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss"):
        raise ValueError(f"{parts.scheme}:// is not Redis: {_REDIS_FORMS}")
    _check_authority(parts, _REDIS_FORMS)
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise ValueError(
            f"the database {database!r} in its path is not a number (Redis numbers its "
            f"databases from 0): {_REDIS_FORMS}"
        )
    tls = scheme == "rediss"
    for name, _value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _REDIS_TLS_OPTIONS and not tls:
            raise ValueError(
                f"the option {name}= is for TLS, which redis:// does not use: write rediss://…"
            )
        if name not in _REDIS_OPTIONS | _REDIS_TLS_OPTIONS:
            known = sorted(_REDIS_OPTIONS | (_REDIS_TLS_OPTIONS if tls else frozenset()))
            raise ValueError(
                f"the option {name}= is not one the gateway's Redis client takes: it takes "
                f"{', '.join(known)}"
            )
    from redis.connection import parse_url

    try:
        parse_url(text)  # type: ignore[no-untyped-call]
    except ValueError as exc:  # an option's value of the wrong type
        raise ValueError(f"{str(exc).rstrip('.')}: correct it") from None
    return text


def setting_variables() -> frozenset[str]:
    """Every environment variable that names a setting (a section, or one of its fields)."""
    return frozenset(_variables(Settings, PREFIX))


def _variables(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name.upper()}"
        yield variable
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _variables(annotation, f"{variable}__")


def _groups(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, type[BaseModel]]]:
    """Every variable that names a group of settings (``FNG_GATEWAY_FNG``,
    ``FNG_GATEWAY_FNG__PATHS``), with the group."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            variable = f"{prefix}{name.upper()}"
            yield variable, annotation
            yield from _groups(annotation, f"{variable}__")


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse a ``FNG_GATEWAY_`` variable that names no setting, naming the closest one: a
    typo would otherwise be ignored, and the gateway run on a default in its place."""
    known = setting_variables() | OTHER_VARIABLES
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in known or _SERVICE_LINK.match(upper):
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.75)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigurationError(
            f"{name} is not a setting of the gateway: {hint}correct or unset it (the README's "
            "settings table lists them)"
        )
    groups = dict(_groups(Settings, PREFIX))
    for name in sorted(environ):
        group = groups.get(name.upper())
        if group is None:
            continue
        try:
            whole = json.loads(environ[name])
        except ValueError:
            whole = None
        if not isinstance(whole, dict):
            example = f"{name.upper()}__{next(iter(group.model_fields)).upper()}"
            raise ConfigurationError(
                f"{name} would set a whole group of settings at once, as a JSON object, and "
                f"is not one: set each setting of the group with a variable of its own (such "
                f"as {example}), and unset {name}"
            )
    check_event_loop(environ.get("FNG_GATEWAY_EVENT_LOOP"))
