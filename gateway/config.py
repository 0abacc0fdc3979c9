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
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
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


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class XmlLimits(_Section):
    """Bounds on every XML document the gateway accepts."""

    max_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_depth: int = Field(64, ge=4, le=256)
    #: Elements in one document (a 50,000-line journal has about 50,000).
    max_elements: int = Field(1_000_000, ge=16)
    #: Attributes in one document, counted conservatively before parsing (every "=").
    max_attributes: int = Field(4_000_000, ge=16)
    body_timeout_seconds: float = Field(60.0, gt=0)
    #: Journals sent as text larger than this are streamed (validated and hashed as they are
    #: parsed, never held as a tree: memory under 3 times the journal, but about a fifth more
    #: CPU); smaller ones are read as a tree, which is faster. 0 streams every one.
    stream_above_bytes: int = Field(1024 * 1024, ge=0)


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


class FngHeaders(_Section):
    psk: str = "X-PSK"
    client_id: str = "X-Client-Id"
    scope: str = "scope"
    request_id: str = "X-Request-Id"


class FngSettings(_Section):
    base_url: str = "http://127.0.0.1:8081/fng"
    connect_timeout_seconds: float = Field(5.0, gt=0)
    timeout_seconds: float = Field(30.0, gt=0)
    max_connections: int = Field(100, ge=1)
    read_retries: int = Field(2, ge=0, le=5)
    paths: FngPaths = FngPaths()
    headers: FngHeaders = FngHeaders()

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


class SimsIdSettings(_Section):
    scope: str = "fngapi"
    timeout_seconds: float = Field(10.0, gt=0)
    refresh_before_seconds: float = Field(120.0, ge=0)
    refresh_jitter_seconds: float = Field(30.0, ge=0)
    retry_seconds: float = Field(5.0, gt=0)


class LedgerSettings(_Section):
    wait_seconds: float = Field(20.0, ge=0)
    lease_seconds: float = Field(90.0, gt=0)


class BudgetSettings(_Section):
    #: How long a database's chart of accounts and financial years are reused.
    cache_seconds: float = Field(300.0, ge=0)
    #: Official schemas, when an operator has them, used instead of the gateway's own.
    chart_schema: Path | None = None
    years_schema: Path | None = None
    import_schema: Path | None = None


class EprocSettings(_Section):
    #: Poll supplier portals (every replica runs the scheduler; portals are leased).
    enabled: bool = True
    #: How often the scheduler looks for portals due.
    tick_seconds: float = Field(1.0, gt=0)
    #: Portals polled at once by one replica.
    max_concurrent_portals: int = Field(8, ge=1)
    #: A portal call's timeout, and the most a whole poll of one portal may take.
    call_timeout_seconds: float = Field(30.0, gt=0)
    poll_timeout_seconds: float = Field(300.0, gt=0)
    #: After a failed poll the next waits twice as long each time, up to this.
    max_backoff_seconds: float = Field(900.0, gt=0)
    #: When the last good poll is older than this, FetchIndexFromDate is asked too, to warn
    #: of documents another client processed in the meantime.
    recover_after_seconds: float = Field(3600.0, gt=0)
    #: How often orders authorised in FNG are looked for.
    orders_seconds: float = Field(60.0, gt=0)
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
    retire_grace_seconds: float = Field(14 * 86400.0, ge=0)
    #: How long an account's old password stays accepted after a change.
    password_overlap_seconds: float = Field(14 * 86400.0, ge=0)


class ShutdownSettings(_Section):
    """On SIGTERM: readiness answers 503 at once and the scheduler takes no more work; after
    ``drain_seconds`` (for load balancers to stop sending) the listener closes and calls in
    flight have ``grace_seconds`` to finish."""

    drain_seconds: float = Field(5.0, ge=0)
    grace_seconds: float = Field(25.0, ge=0)


class AuthSettings(_Section):
    """Failed logins are counted three ways over a sliding window; each limit reached refuses
    only what it counts, until enough of its failures are older than the window. 0: no limit."""

    registry_cache_seconds: float = Field(5.0, ge=0)
    #: Failed logins of one account from one client address: the account is then refused
    #: from that address; other accounts there, and the account elsewhere, are not.
    max_failures: int = Field(10, ge=0)
    #: Failed logins of one account from all addresses together: the account is then
    #: refused from every address.
    max_account_failures: int = Field(50, ge=0)
    #: Failed logins from one address, all accounts together: the address is then refused.
    #: Far above ``max_failures``, so that one account's mistakes never refuse its neighbours.
    max_address_failures: int = Field(100, ge=0)
    failure_window_seconds: float = Field(900.0, gt=0)

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
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FNG_GATEWAY_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
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
    def _known_driver(cls, value: str) -> str:
        """PostgreSQL through asyncpg, SQLite through aiosqlite: ``postgresql://`` and
        ``sqlite://`` mean those; another driver is refused, saying what to write."""
        scheme, separator, rest = value.partition("://")
        if not separator:
            raise ValueError(
                "not a database URL: write postgresql://user:password@host:5432/name or "
                "sqlite:///path/to/file.db"
            )
        backend, _, driver = scheme.lower().partition("+")
        wanted = {"postgresql": "asyncpg", "postgres": "asyncpg", "sqlite": "aiosqlite"}.get(
            backend
        )
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
        return f"{'postgresql' if wanted == 'asyncpg' else 'sqlite'}+{wanted}://{rest}"

    #: Redis (redis://host:6379/0), shared by replicas: the token and read caches, locks,
    #: and failed-login counts. Without it they live in the process.
    redis_url: str | None = None
    master_keys: SecretStr | None = None
    master_keys_file: Path | None = None
    #: How often a master keys file is checked for changes.
    master_keys_reload_seconds: float = Field(10.0, gt=0)
    auto_migrate: bool = True
    trusted_proxies: tuple[str, ...] = ()
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
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("FNG_GATEWAY_CONFIG_FILE")
        if config_file:
            sources.append(_toml_source(settings_cls, Path(config_file)))
        return tuple(sources)


def _toml_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    if not path.is_file():
        raise ConfigurationError(
            f"the config file {path} (FNG_GATEWAY_CONFIG_FILE) does not exist: give the path "
            "of a TOML file, or unset FNG_GATEWAY_CONFIG_FILE"
        )
    try:
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"the config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(
            f"the config file {path} cannot be read ({exc.strerror}): check its permissions"
        ) from None


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
