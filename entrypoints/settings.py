"""Configuration from the environment (and an optional `.env`), read once, validated at start."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from limits import parse_many
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from adapters.cache.urls import ClusterUrl
from application.limits import LoginLimits, Rate, Rates

MIN_SECRET_BYTES = 32
OFF = "off"
LOGIN_LIMIT_KINDS = ("account_address", "account", "address")
DEFAULT_LOGIN_LIMITS = "account_address: 5/15 minutes; account: 50/hour; address: 100/hour"


def parse_rates(value: str) -> Rates:
    """`off`, or rates in the `limits` notation separated by commas: `5/minute, 20/hour`,
    `10 per 15 minutes`."""
    value = value.strip()
    if value.lower() == OFF:
        return ()
    try:
        items = parse_many(value)
    except ValueError:
        raise ValueError(f"cannot read {value!r}: write e.g. '5/minute, 20/hour', or 'off'") from None
    return tuple(Rate(item.amount, item.get_expiry()) for item in items)


def parse_login_limits(value: str) -> LoginLimits:
    """`off`, or `kind: rates` separated by semicolons, for the kinds account_address, account and
    address; a kind not named keeps its default."""
    if value.strip().lower() == OFF:
        return LoginLimits()
    chosen: dict[str, Rates] = {}
    for text in (DEFAULT_LOGIN_LIMITS, value):
        for part in filter(None, (part.strip() for part in text.split(";"))):
            kind, colon, rates = part.partition(":")
            kind = kind.strip().lower()
            if not colon or kind not in LOGIN_LIMIT_KINDS:
                raise ValueError(
                    f"cannot read {part!r}: write 'kind: rates' with kind one of "
                    f"{', '.join(LOGIN_LIMIT_KINDS)}, e.g. '{DEFAULT_LOGIN_LIMITS}', or 'off'"
                )
            chosen[kind] = parse_rates(rates)
    return LoginLimits(**chosen)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEXPOST_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///var/hexpost.db"
    cache_url: str = "memory://"
    # Namespaces the keys in a shared Redis: one deployment (or test run) per prefix.
    cache_key_prefix: str = Field("hexpost:", min_length=1, max_length=64)
    jwt_secret: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    token_ttl_seconds: int = Field(1800, ge=1)
    refresh_ttl_seconds: int = Field(1_209_600, ge=1)
    cache_ttl_seconds: int = Field(300, ge=1)
    # A list whose response is larger is served from the database every time, never cached.
    cache_max_entry_bytes: int = Field(8_388_608, ge=1)
    max_post_bytes: int = Field(1_048_576, ge=1, le=16_777_215)
    max_body_bytes: int = Field(8_388_608, ge=1024)
    var_dir: Path = Path("var")
    # argon2id, at least OWASP's minimum (19 MiB, 2 passes, 1 lane): a login costs ~30 ms of CPU.
    # Hashes made with other parameters are replaced at their user's next successful login.
    argon2_memory_kib: int = Field(19_456, ge=19_456, le=4_194_304)
    argon2_time_cost: int = Field(2, ge=2, le=100)
    argon2_parallelism: int = Field(1, ge=1, le=64)
    # Hashes computed at once; default: one core fewer than the process may use (at least one), so
    # that a login storm leaves a core to the event loop.
    argon2_threads: int | None = Field(None, ge=1, le=256)
    log_level: Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    # A JSON list or comma-separated origins, e.g. `https://app.example,https://admin.example`.
    cors_origins: Annotated[list[str], NoDecode] = []
    # Bounds on what one server process takes on (README "Limits"); `off` (None) lifts one.
    max_in_flight: Annotated[int | None, Field(ge=1)] = 128
    max_queued: Annotated[int | None, Field(ge=0)] = 1024
    max_connections: Annotated[int | None, Field(ge=1)] = 2048
    max_header_bytes: Annotated[int | None, Field(ge=1024)] = 32 * 1024
    header_timeout_seconds: Annotated[float | None, Field(gt=0)] = 10.0
    body_timeout_seconds: Annotated[float | None, Field(gt=0)] = 10.0
    keep_alive_seconds: int = Field(5, ge=1)
    # Abuse protection (README, "Limits"): rates in the `limits` notation, or `off`.
    login_limits: str = DEFAULT_LOGIN_LIMITS
    register_limits: str = "5/minute, 20/hour"
    refresh_limits: str = "30/minute"
    post_limits: str = "60/minute, 1000/hour"
    max_posts_per_user: Annotated[int | None, Field(ge=1)] = 10_000
    max_bytes_per_user: Annotated[int | None, Field(ge=1)] = 104_857_600
    refuse_common_passwords: bool = True
    # Proxies whose X-Forwarded-For is believed: addresses or networks, comma-separated, or `*`.
    forwarded_allow_ips: Annotated[list[str], NoDecode] = []
    # `on`: /metrics beside the API; `off`; or a port number: /metrics on that port only.
    metrics: Literal["on", "off"] | Annotated[int, Field(ge=1, le=65535)] = "on"

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator(
        "max_in_flight",
        "max_queued",
        "max_connections",
        "max_header_bytes",
        "header_timeout_seconds",
        "body_timeout_seconds",
        "max_posts_per_user",
        "max_bytes_per_user",
        mode="before",
    )
    @classmethod
    def _off_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == OFF:
            return None
        return value

    @field_validator("login_limits")
    @classmethod
    def _login_limits(cls, value: str) -> str:
        parse_login_limits(value)
        return value

    @field_validator("register_limits", "refresh_limits", "post_limits")
    @classmethod
    def _rates(cls, value: str) -> str:
        parse_rates(value)
        return value

    @field_validator("metrics", mode="before")
    @classmethod
    def _switch_in_any_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("cors_origins", "forwarded_allow_ips", mode="before")
    @classmethod
    def _origins_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.env == "production":
            secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
            if not secret:
                raise ValueError(
                    "HEXPOST_ENV=production needs HEXPOST_JWT_SECRET, a random secret of at least "
                    f"{MIN_SECRET_BYTES} bytes; it is not set"
                )
            if len(secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"HEXPOST_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes when "
                    f"HEXPOST_ENV=production; it has {len(secret.encode())}"
                )
        elif (
            self.jwt_secret is not None
            and len(self.jwt_secret.get_secret_value().encode()) < MIN_SECRET_BYTES
        ):
            raise ValueError(f"HEXPOST_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        if self.workers > 1 and (self.database_url == "memory://" or self.cache_url == "memory://"):
            raise ValueError(
                "HEXPOST_WORKERS > 1 needs storage and a cache the processes share: "
                "set HEXPOST_DATABASE_URL to SQLite or MySQL and HEXPOST_CACHE_URL to redis:// (or redis+cluster://)"
            )
        if self.metrics == self.port:
            raise ValueError("HEXPOST_METRICS names the API's own port: leave it `on` or pick another port")
        if not self.database_url.startswith(("memory://", "sqlite+aiosqlite://", "mysql+asyncmy://")):
            raise ValueError(
                "HEXPOST_DATABASE_URL must be memory://, sqlite+aiosqlite:///path or "
                "mysql+asyncmy://user:pass@host:port/db"
            )
        if not self.cache_url.startswith(("memory://", "redis://", "rediss://")):
            try:
                cluster = ClusterUrl.parse(self.cache_url)
            except ValueError as exc:
                raise ValueError(f"HEXPOST_CACHE_URL: {exc}") from None
            if cluster is None:
                raise ValueError(
                    "HEXPOST_CACHE_URL must be memory://, redis://host:port/db or "
                    "redis+cluster://host:port[,host:port...]"
                )
        return self

    @property
    def secret_file(self) -> Path:
        return self.var_dir / "jwt-secret"


def configuration_error(error: ValidationError) -> str:
    """The reasons `Settings()` refused the configuration, on one line, naming the variables."""
    reasons = []
    for item in error.errors(include_url=False):
        message = item["msg"].removeprefix("Value error, ")
        fields = [str(part) for part in item["loc"]]
        if fields:
            message = f"HEXPOST_{fields[0].upper()}: {message}"
        reasons.append(message)
    return "hexpost: configuration error: " + "; ".join(reasons)


def jwt_secret(settings: Settings) -> str:
    """The configured secret, or in development one generated on first use and kept in `var/`
    (mode 0600), so that tokens survive restarts."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    path = settings.secret_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48))
        try:
            # Atomic and never overwrites: when several workers start at once, the first one wins
            # and the others read what it wrote.
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    secret = path.read_text().strip()
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"{path} holds a secret shorter than {MIN_SECRET_BYTES} bytes")
    return secret
