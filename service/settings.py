"""Service settings, read from ``SPARD_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from spard.service.runs.store import DEFAULT_MAX_OPEN_STEPS

TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LOCAL_TENANT = "local"


class Settings(BaseSettings):
    """Every knob of the service. ``SPARD_API_KEYS`` is ``key=tenant,key2=tenant2`` or JSON.

    Settings that would serve wrongly are refused at construction (a ``ValidationError``
    naming the setting to change), so no caller has to remember a check."""

    model_config = SettingsConfigDict(env_prefix="SPARD_", extra="ignore")

    redis_url: str | None = Field(None, description="Redis URL; unset: the in-memory store")
    redis_cluster: bool = Field(False, description="connect to a Redis Cluster")
    redis_timeout_s: float = Field(2.0, gt=0, description="socket timeout of a Redis call")
    redis_password_file: Path | None = Field(
        None, description="file holding the Redis password (a mounted Secret); unset: none"
    )
    key_prefix: str = Field("spard", pattern=r"^[A-Za-z0-9_.-]+$")

    host: str = Field("127.0.0.1", description="bind address (decides the auth default)")
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1)

    api_keys: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description="API key -> tenant"
    )
    metrics_key: str | None = Field(
        None,
        min_length=16,
        description="bearer token that lets a scraper see every tenant's per-run series on "
        "/metrics (a tenant's API key sees its own runs; no key: process metrics only)",
    )
    # Kubernetes mounts Secrets as files (an environment variable leaks into every child
    # process, crash dump and `kubectl describe`): each secret can come from a file instead.
    api_keys_file: Path | None = Field(
        None, description="file holding SPARD_API_KEYS's value (instead of the variable)"
    )
    metrics_key_file: Path | None = Field(
        None, description="file holding SPARD_METRICS_KEY's value (instead of the variable)"
    )
    auth_disabled: bool | None = Field(
        None, description="None: disabled only for the in-memory store on a loopback address"
    )

    max_body_bytes: int = Field(64 * 2**20, gt=0, description="request body limit (413)")
    body_timeout_s: float = Field(
        60.0, gt=0, description="time to receive a request's whole body (408 past it)"
    )
    max_scores: int = Field(4 * 2**20, gt=0, description="limit of N*G*K in one step (413)")
    max_objectives: int = Field(64, gt=0)
    max_observations: int = Field(10_000, gt=0, description="observations in one request (413)")
    cache_bytes: int = Field(
        256 * 2**20,
        ge=0,
        description="decoded run states a replica keeps in memory, by their stored size "
        "(least recently used dropped first; a larger state is read from the store each step)",
    )
    max_open_steps: int = Field(
        DEFAULT_MAX_OPEN_STEPS,
        gt=0,
        le=4096,
        description="steps per run holding observations not yet applied (409 past it); also "
        "the most steps one observations request may name (422)",
    )
    step_retention: int = Field(8, ge=1, le=10_000, description="step responses kept per run")
    history_retention: int = Field(2000, ge=1, description="history entries kept per run")
    run_ttl_s: int = Field(30 * 86400, ge=0, description="idle runs expire after this; 0: never")
    metrics_max_runs: int = Field(200, ge=0, description="runs exported as per-run gauges")
    metrics_run_window_s: int = Field(3600, gt=0, description="runs stepped within this window")

    _redis_password: str | None = PrivateAttr(None)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: Any) -> Any:
        return parse_api_keys(value, "SPARD_API_KEYS")

    @field_validator("api_keys", mode="after")
    @classmethod
    def _check_tenants(cls, value: dict[str, str]) -> dict[str, str]:
        return check_tenants(value)

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        # Read once, here: a missing or empty mount fails at startup with the setting's name,
        # not at the first request (or the first Redis reconnect).
        if self.api_keys_file is not None:
            if self.api_keys:
                raise ValueError("set SPARD_API_KEYS or SPARD_API_KEYS_FILE, not both")
            text = read_secret_file(self.api_keys_file, "SPARD_API_KEYS_FILE")
            keys = parse_api_keys(text, "SPARD_API_KEYS_FILE")
            if not isinstance(keys, dict) or not all(
                isinstance(v, str) for v in (*keys, *keys.values())
            ):
                raise ValueError("SPARD_API_KEYS_FILE must map key strings to tenant strings")
            self.api_keys = check_tenants(keys)
        if self.metrics_key_file is not None:
            if self.metrics_key is not None:
                raise ValueError("set SPARD_METRICS_KEY or SPARD_METRICS_KEY_FILE, not both")
            key = read_secret_file(self.metrics_key_file, "SPARD_METRICS_KEY_FILE")
            if len(key) < 16:
                raise ValueError("SPARD_METRICS_KEY_FILE must hold at least 16 characters")
            self.metrics_key = key
        if self.redis_password_file is not None:
            if not self.redis_url:
                raise ValueError("SPARD_REDIS_PASSWORD_FILE is set but SPARD_REDIS_URL is not")
            # redis-py lets a password in the URL override the one passed beside it: refuse
            # two passwords rather than use the one the operator did not mean.
            if urlsplit(self.redis_url).password is not None:
                raise ValueError(
                    "set the Redis password in SPARD_REDIS_URL or SPARD_REDIS_PASSWORD_FILE, "
                    "not both"
                )
            self._redis_password = read_secret_file(
                self.redis_password_file, "SPARD_REDIS_PASSWORD_FILE"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_or_broken_setups(self) -> Settings:
        # After _read_secret_files (validators run in the order they are defined): the API
        # keys may come from SPARD_API_KEYS_FILE.
        if self.auth_required and not self.api_keys:
            raise ValueError(
                "authentication is required (Redis store or a non-loopback address) but "
                "SPARD_API_KEYS is empty: set SPARD_API_KEYS='key=tenant' or, for local use "
                "only, SPARD_AUTH_DISABLED=true"
            )
        if self.uses_memory_store and self.workers > 1:
            raise ValueError(
                "the in-memory store lives in one process: several workers need SPARD_REDIS_URL"
            )
        return self

    @property
    def redis_password(self) -> str | None:
        """The password read from ``SPARD_REDIS_PASSWORD_FILE`` (None: not set, or it is
        in ``SPARD_REDIS_URL``)."""
        return self._redis_password

    @property
    def uses_memory_store(self) -> bool:
        """Whether run state lives in this process (no Redis URL)."""
        return not self.redis_url

    @property
    def auth_required(self) -> bool:
        """Auth is on unless disabled explicitly; by default it is off only for the in-memory
        store on a loopback address with no API keys configured."""
        if self.auth_disabled is not None:
            return not self.auth_disabled
        local = self.uses_memory_store and is_loopback(self.host)
        return bool(self.api_keys) or not local


def describe_error(exc: ValueError) -> str:
    """One line per problem, each naming its setting, and never the value given: a rejected
    value may be an API key or a password, and this line goes to the logs."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        field = error["loc"][0] if error["loc"] else None
        setting = f"SPARD_{str(field).upper()}" if field is not None else None
        lines.append(message if setting is None or setting in message else f"{setting}: {message}")
    return "; ".join(lines)


def parse_api_keys(value: Any, setting: str) -> Any:
    """``key=tenant,key2=tenant2`` or a JSON object, as a dict; other values pass through."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return {}
    if text.startswith("{"):
        import json

        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{setting} is not valid JSON: {exc}") from None
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(pair) != 2 or not all(p.strip() for p in pair) for pair in pairs):
        raise ValueError(f"{setting} must be 'key=tenant,key2=tenant2' or a JSON object")
    return {key.strip(): tenant.strip() for key, tenant in pairs}


def check_tenants(value: dict[str, str]) -> dict[str, str]:
    """Refuse tenant names that could not be part of a Redis key name."""
    for tenant in value.values():
        if not TENANT_PATTERN.match(tenant):
            raise ValueError(
                f"tenant {tenant!r} must match {TENANT_PATTERN.pattern} (it is part of "
                "Redis key names)"
            )
    return value


def read_secret_file(path: Path, setting: str) -> str:
    """The file's text without the trailing newline that `echo` and editors leave; an
    unreadable or empty file is an error naming ``setting``."""
    try:
        text = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{setting}: cannot read {path}: {exc}") from None
    if not text.strip():
        raise ValueError(f"{setting}: {path} is empty")
    return text


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
