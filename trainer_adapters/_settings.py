"""The ``SPARD_*`` environment every adapter reads, and opening a run by id: what the TRL,
ms-swift and verl adapters share before their first step."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from spard.client import RunInfo, SpardClient
from spard.client.errors import ConflictError, RunNotFoundError


class AdapterSettings(BaseSettings):
    """The ``SPARD_*`` environment of a trainer's processes."""

    model_config = SettingsConfigDict(env_prefix="SPARD_", extra="ignore")

    url: str | None = Field(None, description="the service; none: in-process (local mode)")
    # SPARD_CLIENT_API_KEY: the one key this trainer presents. Not SPARD_API_KEY, one letter
    # from the service's SPARD_API_KEYS (every key it accepts), which a shared environment
    # would set too.
    client_api_key: str | None = Field(None, description="the key sent to the service")
    deprecated_api_key: str | None = Field(
        None,
        validation_alias="SPARD_API_KEY",
        description="the former name of SPARD_CLIENT_API_KEY, still read (with a warning)",
    )
    run_id: str | None = Field(None, description="reused if it exists, else created")
    objectives: str = Field("", description="comma-separated, for a new run")
    strategy: str = "spard"
    config: dict[str, Any] = Field(default_factory=dict, description="SpardConfig overrides")

    @model_validator(mode="after")
    def _read_the_former_key_name(self) -> AdapterSettings:
        if self.deprecated_api_key is not None:
            warnings.warn(
                "SPARD_API_KEY is deprecated: set SPARD_CLIENT_API_KEY (the key the trainer "
                "sends; SPARD_API_KEYS is the service's list of accepted keys)"
                + ("; SPARD_CLIENT_API_KEY is set too and wins" if self.client_api_key else ""),
                FutureWarning,  # shown by default: the user set this variable, not a library
                stacklevel=2,
            )
            if self.client_api_key is None:
                self.client_api_key = self.deprecated_api_key
        return self

    @property
    def objective_names(self) -> list[str]:
        """``objectives`` as a list (empty when unset)."""
        return [name.strip() for name in self.objectives.split(",") if name.strip()]

    def client(self, **options: Any) -> SpardClient:
        """The SDK client these settings name (``options``: the client's)."""
        if self.url:
            return SpardClient(self.url, api_key=self.client_api_key, **options)
        return SpardClient.local(**options)


def get_or_create_run(
    client: SpardClient, run_id: str | None, create: Callable[[], RunInfo]
) -> RunInfo:
    """Run ``run_id`` if it exists, else ``create()``'s; when another process created the
    same id first (a conflict), that run."""
    if run_id is not None:
        try:
            return client.get_run(run_id)
        except RunNotFoundError:
            pass
    try:
        return create()
    except ConflictError:
        if run_id is None:
            raise
        return client.get_run(run_id)
