"""The ``SPARD_*`` environment every adapter reads, and opening a run by id: what the TRL,
ms-swift and verl adapters share before their first step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from spard.client import RunInfo, SpardClient
from spard.client.errors import ConflictError, RunNotFoundError


class AdapterSettings(BaseSettings):
    """The ``SPARD_*`` environment of a trainer's processes."""

    model_config = SettingsConfigDict(env_prefix="SPARD_", extra="ignore")

    url: str | None = Field(None, description="the service; none: in-process (local mode)")
    api_key: str | None = None
    run_id: str | None = Field(None, description="reused if it exists, else created")
    objectives: str = Field("", description="comma-separated, for a new run")
    strategy: str = "spard"
    config: dict[str, Any] = Field(default_factory=dict, description="SpardConfig overrides")

    @property
    def objective_names(self) -> list[str]:
        """``objectives`` as a list (empty when unset)."""
        return [name.strip() for name in self.objectives.split(",") if name.strip()]

    def client(self, **options: Any) -> SpardClient:
        """The SDK client these settings name (``options``: the client's)."""
        if self.url:
            return SpardClient(self.url, api_key=self.api_key, **options)
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
