"""The trainers' SPARD_* environment: the key a trainer sends is SPARD_CLIENT_API_KEY, not the
service's SPARD_API_KEYS; the former SPARD_API_KEY is still read, with a FutureWarning."""

from __future__ import annotations

import warnings

import httpx
import pytest

pytest.importorskip("pydantic_settings")

from spard.client.errors import RunNotFoundError
from spard.trainer_adapters._settings import AdapterSettings


def sent_authorization(settings: AdapterSettings) -> str | None:
    """The Authorization header the client these settings make sends."""
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(404, json={"detail": "no such run", "field": "run_id"})

    client = settings.client(transport=httpx.MockTransport(answer))
    with client, pytest.raises(RunNotFoundError):
        client.get_run("r")
    return seen[0]


@pytest.fixture(autouse=True)
def no_spard_environment(monkeypatch):
    for name in ("SPARD_CLIENT_API_KEY", "SPARD_API_KEY", "SPARD_API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPARD_URL", "http://spard.test")


def test_the_client_key_is_sent_and_the_services_key_list_is_not(monkeypatch):
    monkeypatch.setenv("SPARD_API_KEYS", "server-side=tenant")  # a shared environment
    monkeypatch.setenv("SPARD_CLIENT_API_KEY", "trainer-key")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = AdapterSettings()
    assert settings.client_api_key == "trainer-key"
    assert sent_authorization(settings) == "Bearer trainer-key"


def test_no_key_sends_no_authorization(monkeypatch):
    monkeypatch.setenv("SPARD_API_KEYS", "server-side=tenant")
    assert sent_authorization(AdapterSettings()) is None


def test_the_former_name_still_works_with_a_deprecation_warning(monkeypatch):
    monkeypatch.setenv("SPARD_API_KEY", "old-key")
    with pytest.warns(FutureWarning, match="set SPARD_CLIENT_API_KEY"):
        settings = AdapterSettings()
    assert sent_authorization(settings) == "Bearer old-key"


def test_the_new_name_wins_over_the_former_one(monkeypatch):
    monkeypatch.setenv("SPARD_API_KEY", "old-key")
    monkeypatch.setenv("SPARD_CLIENT_API_KEY", "new-key")
    with pytest.warns(FutureWarning, match="SPARD_CLIENT_API_KEY is set too and wins"):
        settings = AdapterSettings()
    assert sent_authorization(settings) == "Bearer new-key"
