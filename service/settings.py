"""Service settings, read from ``SPARD_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from spard.service.runs.ledger import DEFAULT_MAX_OPEN_STEPS

TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LOCAL_TENANT = "local"


class Settings(BaseSettings):
    """Every knob of the service. ``SPARD_API_KEYS`` is ``key=tenant,key2=tenant2`` or JSON."""

    model_config = SettingsConfigDict(env_prefix="SPARD_", extra="ignore")

    redis_url: str | None = Field(None, description="Redis URL; unset: the in-memory store")
    redis_cluster: bool = Field(False, description="connect to a Redis Cluster")
    redis_timeout_s: float = Field(2.0, gt=0, description="socket timeout of a Redis call")
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

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text:
            return {}
        if text.startswith("{"):
            import json

            return json.loads(text)
        pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
        if any(len(pair) != 2 or not all(p.strip() for p in pair) for pair in pairs):
            raise ValueError("SPARD_API_KEYS must be 'key=tenant,key2=tenant2' or a JSON object")
        return {key.strip(): tenant.strip() for key, tenant in pairs}

    @field_validator("api_keys", mode="after")
    @classmethod
    def _check_tenants(cls, value: dict[str, str]) -> dict[str, str]:
        for tenant in value.values():
            if not TENANT_PATTERN.match(tenant):
                raise ValueError(
                    f"tenant {tenant!r} must match {TENANT_PATTERN.pattern} (it is part of "
                    "Redis key names)"
                )
        return value

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

    def check(self) -> None:
        """Refuse settings that would serve wrongly; raises ``ValueError`` with the fix."""
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


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
