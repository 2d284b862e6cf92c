"""/docs works offline: the page and every asset it loads come from the service itself."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.anyio


async def test_the_docs_page_references_no_external_host(client):
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "swagger-ui" in page.text
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    assert not [url for url in urls if re.match(r"(https?:)?//", url)], urls
    for url in urls:
        answer = await client.get(url)
        assert answer.status_code == 200, url
    assert (await client.get("/redoc")).status_code == 404  # it would load from a CDN


def test_the_create_request_publishes_every_config_knob():
    import spard
    from spard.service import Settings
    from spard.service.http.app import create_app

    document = create_app(Settings(auth_disabled=True)).openapi()
    config = document["components"]["schemas"]["CreateRunRequest"]["properties"]["config"]
    assert set(config["properties"]) == {*spard.SpardConfig.model_fields, "preset"}
    assert config["additionalProperties"] is False
    assert "required" not in config
    step_size = config["properties"]["step_size"]
    assert (step_size["default"], step_size["maximum"]) == (0.2, 1000.0)
    assert "exponentiated-gradient" in step_size["description"]
    assert config["description"].startswith("overrides of SpardConfig fields")
