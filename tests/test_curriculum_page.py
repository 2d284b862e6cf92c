"""The curriculum page at ``/``, in a real headless chromium against a real ``spard serve`` on
Redis: it plots a run as its steps arrive, asks no outside host for anything, and shows a
tenant only its own runs. ``GET /v1/runs``, which the page reads, is checked in-process too."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from conftest import service_client, service_settings

from spard.client import SpardClient
from tests.servers import ServiceProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHARTS = ["weights", "sample-weights", "zero-signal", "level", "progress", "reliability"]
OBJECTIVES = ["correctness", "format", "brevity"]
# An objective name that is HTML: the page must show it as text, never parse it.
EVIL = "<img src=x onerror=window.__xss=1>"


def scores(step: int) -> np.ndarray[Any, Any]:
    return np.random.default_rng(step).random((8, 4, len(OBJECTIVES)))


# The API the page reads -------------------------------------------------------------------------
@pytest.mark.anyio
async def test_list_runs_is_the_tenants_own_newest_first(store_kind, request):
    redis = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    keys = {"key-a": "alpha", "key-b": "beta"}
    settings = service_settings(store_kind, redis, api_keys=keys, auth_disabled=None)
    async with service_client(settings) as http:
        a = {"authorization": "Bearer key-a"}
        b = {"authorization": "Bearer key-b"}
        for run_id, headers in [("a1", a), ("b1", b), ("a2", a)]:
            body = {"run_id": run_id, "objectives": ["x", "y"]}
            assert (await http.post("/v1/runs", json=body, headers=headers)).status_code == 201
        stepped = await http.post(
            "/v1/runs/a1/steps", json={"step": 0, "scores": [[[1, 0], [0, 1]]]}, headers=a
        )
        assert stepped.status_code == 200, stepped.text
        listed = (await http.get("/v1/runs", headers=a)).json()["runs"]
        assert [run["run_id"] for run in listed] == ["a1", "a2"]  # a1 was stepped last
        assert listed[0]["last_step"] == 0
        assert [r["run_id"] for r in (await http.get("/v1/runs", headers=b)).json()["runs"]] == [
            "b1"
        ]
        assert (await http.get("/v1/runs")).status_code == 401
        assert len((await http.get("/v1/runs?limit=1", headers=a)).json()["runs"]) == 1
        # The tenant filter comes before the limit: a run of beta's created last (the newest
        # of all, in Redis's index of active runs too) does not take alpha's one place.
        body = {"run_id": "b2", "objectives": ["x", "y"]}
        assert (await http.post("/v1/runs", json=body, headers=b)).status_code == 201
        first = (await http.get("/v1/runs?limit=1", headers=a)).json()["runs"]
        assert len(first) == 1
        # Redis orders its index by each run's latest write only to within a few seconds.
        assert first[0]["run_id"] in ({"a1"} if store_kind == "memory" else {"a1", "a2"})
        first = (await http.get("/v1/runs?limit=1", headers=b)).json()["runs"]
        assert [run["run_id"] for run in first] == ["b2"]


@pytest.mark.anyio
async def test_page_and_assets_are_served_with_a_same_origin_policy(store_kind, request):
    redis = request.getfixturevalue("redis_server") if store_kind == "redis" else None
    async with service_client(service_settings(store_kind, redis)) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "connect-src 'self'" in page.headers["content-security-policy"]
        for asset in ["uPlot.iife.min.js", "uPlot.min.css", "curriculum.js", "curriculum.css"]:
            assert f"/ui/assets/{asset}" in page.text
            assert (await http.get(f"/ui/assets/{asset}")).status_code == 200
        assert "/" not in (await http.get("/openapi.json")).json()["paths"]


# The page in a browser ----------------------------------------------------------------------------
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None, reason="needs chromium and chromium-driver"
)


@pytest.fixture
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"]:
        options.add_argument(flag)
    # Any host but this machine fails to resolve: a request to one would show in the log
    # below as a failure, never reach the network.
    options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Callable[[], Any], timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            assert value, "timed out"
            return value
        time.sleep(0.1)


# Read in one script each: the page re-renders its list as it polls, and an element found in
# one WebDriver call can be gone (stale) by the next.
def points(driver: Any, chart: str) -> int:
    script = "const c = document.getElementById(arguments[0]); return c ? c.dataset.points : -1"
    return int(driver.execute_script(script, f"chart-{chart}"))


def plotted(driver: Any, chart: str) -> dict[str, float | None]:
    """Each series' last value as the chart holds it (uPlot's data, read back by the page)."""
    script = "const c = document.getElementById(arguments[0]); return c ? c.dataset.last : null"
    text = driver.execute_script(script, f"chart-{chart}")
    return dict(json.loads(text)) if text else {}


def text_of(driver: Any, selector: str) -> str:
    script = (
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.textContent).join('|')"
    )
    return str(driver.execute_script(script, selector))


def listed_runs(driver: Any) -> list[str]:
    script = "return Array.from(document.querySelectorAll('#runs li'), li => li.dataset.runId)"
    return list(driver.execute_script(script))


def requested_urls(driver: Any) -> set[str]:
    """Every URL the browser asked for (the DevTools network log), blocked or not."""
    urls = set()
    for record in driver.get_log("performance"):
        message = json.loads(record["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
    return urls


@pytest.fixture
def redis_service(redis_server) -> Callable[..., ServiceProcess]:
    started: list[ServiceProcess] = []

    def start(**env: str) -> ServiceProcess:
        base = {"SPARD_REDIS_URL": redis_server.url, "SPARD_KEY_PREFIX": uuid.uuid4().hex[:10]}
        server = ServiceProcess(env={**base, **env}).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.mark.slow
@needs_browser
def test_the_page_plots_a_run_as_its_steps_arrive(browser, redis_service, tmp_path):
    server = redis_service(SPARD_AUTH_DISABLED="true")
    client = SpardClient(server.url)
    run = client.create_run(OBJECTIVES, run_id="live-run", config={"warmup": 2})
    for step in range(3):
        client.step(run.run_id, scores(step), step=step)
    browser.get(server.url + "/#run=%E0%A4%A")  # a malformed escape: no run named, no error
    wait_for(lambda: listed_runs(browser) == ["live-run"])
    wait_for(lambda: browser.find_element("id", "run-title").text == "live-run")
    wait_for(lambda: all(points(browser, chart) == 3 for chart in CHARTS))
    for step in range(3, 12):  # while the page is open: it follows
        client.step(run.run_id, scores(step), step=step)
        time.sleep(0.2)
    wait_for(lambda: all(points(browser, chart) == 12 for chart in CHARTS))
    # What the charts hold is the run's history: the last step's values, not just a count.
    last = client.history(run.run_id)[-1]
    assert last["step"] == 11
    assert plotted(browser, "weights") == pytest.approx(last["reward_weights"])
    counts = last["sample_weights"]
    zero_signal = counts["zero_signal"] / counts["prompts"]
    assert plotted(browser, "zero-signal") == pytest.approx({"zero-signal": zero_signal})
    levels = {name: stats["level"] for name, stats in last["stats"].items()}
    assert None not in levels.values()
    assert plotted(browser, "level") == pytest.approx(levels)
    # The charts follow the window's width.
    width = "return document.querySelector('#chart-weights canvas').getBoundingClientRect().width"
    before = browser.execute_script(width)
    browser.set_window_size(2000, 1000)
    wait_for(lambda: browser.execute_script(width) > before + 200)
    # The run list follows the selected run's steps as the header does.
    assert "step 11," in text_of(browser, "#runs li[data-run-id='live-run'] small")
    assert "last step 11" in browser.find_element("id", "run-meta").text
    # Each chart drew: a canvas with a legend entry per series.
    legend = browser.find_elements("css selector", "#chart-weights .u-legend .u-label")
    assert [label.text for label in legend] == ["step", *OBJECTIVES]
    assert len(browser.find_elements("css selector", ".chart canvas")) == len(CHARTS)
    assert browser.find_element("id", "status").text == ""
    shot = Path(os.environ.get("SPARD_PAGE_SCREENSHOT", tmp_path / "page.png"))
    browser.save_screenshot(str(shot))
    origin = urlsplit(server.url).netloc
    outside = {url for url in requested_urls(browser) if urlsplit(url).netloc != origin}
    assert not {url for url in outside if not url.startswith("data:")}
    # A name that is HTML shows as text in the header and the legend, and runs nothing.
    client.create_run([EVIL, "plain"], run_id="html-name")
    client.step("html-name", np.random.default_rng(0).random((8, 4, 2)), step=0)
    browser.get(server.url + "/#run=html-name")
    browser.refresh()  # a new fragment alone would not load the page again
    wait_for(lambda: browser.find_element("id", "run-title").text == "html-name")
    wait_for(lambda: points(browser, "weights") == 1)
    time.sleep(0.5)  # an injected <img src=x> would have failed to load by now
    assert browser.execute_script("return document.querySelectorAll('img').length") == 0
    assert browser.execute_script("return typeof window.__xss") == "undefined"
    assert EVIL in browser.find_element("id", "run-meta").text
    assert text_of(browser, "#chart-weights .u-legend .u-label").split("|") == [
        "step",
        EVIL,
        "plain",
    ]
    assert "html-name" in listed_runs(browser)
    # A key typed in for a service without auth: told so, not that a key is needed.
    browser.find_element("id", "api-key").send_keys("some-key\n")
    wait_for(lambda: "runs without auth" in browser.find_element("id", "status").text)
    assert "needs an API key" not in browser.find_element("id", "status").text
    client.close()


@pytest.mark.slow
@needs_browser
def test_a_tenant_sees_only_its_own_runs(browser, redis_service):
    server = redis_service(SPARD_API_KEYS="key-alpha=alpha,key-beta=beta")
    alpha = SpardClient(server.url, api_key="key-alpha")
    beta = SpardClient(server.url, api_key="key-beta")
    for client, run_id in [(alpha, "alpha-run"), (beta, "beta-run"), (beta, "beta-two")]:
        client.create_run(OBJECTIVES, run_id=run_id)
        client.step(run_id, scores(0), step=0)
    browser.get(server.url + "/")
    # No key: the API refuses, the page says why and lists nothing.
    wait_for(lambda: "needs an API key" in browser.find_element("id", "status").text)
    assert listed_runs(browser) == []
    for key, expected in [("key-alpha", ["alpha-run"]), ("key-beta", ["beta-two", "beta-run"])]:
        field = browser.find_element("id", "api-key")
        field.clear()
        field.send_keys(key + "\n")
        wait_for(lambda expected=expected: listed_runs(browser) == expected)
        wait_for(lambda expected=expected: points(browser, "weights") == 1)
        assert browser.find_element("id", "run-title").text == expected[0]
    # The other tenant's run, asked for by name on a fresh load with beta's key: the page
    # neither lists nor asks for it, and the history it would read is a 404 for this key.
    requested_urls(browser)  # drains the log: what follows is this load's requests only
    browser.get(server.url + "/#run=alpha-run")
    browser.refresh()  # a new fragment alone would not load the page again
    wait_for(lambda: listed_runs(browser) == ["beta-two", "beta-run"])
    wait_for(lambda: points(browser, "weights") == 1)
    assert browser.find_element("id", "run-title").text == "beta-two"
    assert "alpha-run" not in browser.find_element("tag name", "body").text
    assert not [url for url in requested_urls(browser) if "alpha-run" in url]
    fetch = """const done = arguments[arguments.length - 1];
        const key = sessionStorage.getItem("spard-api-key");
        fetch("/v1/runs/alpha-run/history?limit=1000", {headers: {authorization: "Bearer " + key}})
          .then(r => done([key, r.status]), e => done(String(e)));"""
    assert browser.execute_async_script(fetch) == ["key-beta", 404]
    alpha.close()
    beta.close()
