"""Prometheus metrics.

Counters and histograms live in prometheus-client's registry, in multiprocess mode when
``PROMETHEUS_MULTIPROC_DIR`` is set (``spard serve --workers N`` sets it), so every worker's
requests are counted. Per-run gauges are not process state at all: they are read from the
store at scrape time, for the runs written recently, so any replica reports every run, and a
deleted or expired run's series disappear with it (label cardinality stays bounded).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from spard.service.protocol.errors import StoreUnavailableError
from spard.service.runs.run_service import StepOutcomeName
from spard.service.runs.store import RecentRun, Store
from spard.service.settings import Settings

REQUEST_LATENCY = Histogram(
    "spard_http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route", "status"],
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
STEPS = Counter(
    "spard_steps_total", "Steps by outcome (applied, replayed, rejected by the engine)", ["outcome"]
)
OBSERVATIONS = Counter("spard_observations_total", "Streamed observations by outcome", ["outcome"])
STORE_ERRORS = Counter("spard_store_errors_total", "Requests failed by an unavailable store")
RUN_GAUGES = {
    "weight": "spard_run_reward_weight",
    "level": "spard_run_objective_level",
    "progress": "spard_run_objective_progress",
    "reliability": "spard_run_objective_reliability",
    "mean": "spard_run_objective_batch_mean",
}
# Label "stat", not "quantile": Prometheus reserves that one for summaries.
SAMPLE_WEIGHT_STATS = ("min", "p10", "p50", "p90", "max")


class _RunCollector:
    """Per-run gauges from summaries fetched just before the scrape."""

    def __init__(self, summaries: list[RecentRun]) -> None:
        self._summaries = summaries

    def collect(self) -> Iterator[Metric]:
        labels = ["tenant", "run_id", "objective"]
        families = {
            field: GaugeMetricFamily(name, f"Per-run objective {field}", labels=labels)
            for field, name in RUN_GAUGES.items()
        }
        run_labels = ["tenant", "run_id"]
        last_step = GaugeMetricFamily("spard_run_last_step", "Last applied step", labels=run_labels)
        sample = GaugeMetricFamily(
            "spard_run_sample_weight",
            "Quantiles of the last step's data weights over informative prompts",
            labels=[*run_labels, "stat"],
        )
        zero = GaugeMetricFamily(
            "spard_run_zero_signal_fraction",
            "Share of the last step's prompts with no signal",
            labels=run_labels,
        )
        for run in self._summaries:
            try:
                summary = orjson.loads(run.summary)
            except orjson.JSONDecodeError:
                continue  # one unreadable run must not fail the scrape of every tenant
            if not isinstance(summary, dict):
                continue
            stats = summary.get("stats")
            stats = stats if isinstance(stats, dict) else {}
            ids = [run.key.tenant, run.key.run_id]
            if _is_number(summary.get("last_step")):
                last_step.add_metric(ids, summary["last_step"])
            for objective, weight in _numbers(summary.get("reward_weights")):
                families["weight"].add_metric([*ids, objective], weight)
                for field, value in _numbers(stats.get(objective)):
                    if field in families:
                        families[field].add_metric([*ids, objective], value)
            weights = summary.get("last_sample_weights")
            if isinstance(weights, dict):
                for stat, value in _numbers(weights):
                    if stat in SAMPLE_WEIGHT_STATS:
                        sample.add_metric([*ids, stat], value)
                if _is_number(weights.get("zero_signal")) and _is_number(weights.get("prompts")):
                    zero.add_metric(ids, weights["zero_signal"] / max(weights["prompts"], 1))
        yield from families.values()
        yield from (last_step, sample, zero)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numbers(values: object) -> Iterator[tuple[str, float]]:
    """The numeric members of a summary's mapping (a run's stored document may hold nulls)."""
    if isinstance(values, dict):
        for name, value in values.items():
            if _is_number(value):
                yield str(name), float(value)


async def render_metrics(
    store: Store, settings: Settings, tenants: str | None
) -> tuple[bytes, str]:
    """The exposition text and its content type: process metrics, then the per-run series of
    ``tenants`` ("*" for all, a tenant name, or None for none)."""
    if tenants is None:
        return _process_metrics(), CONTENT_TYPE_LATEST
    since = time.time() - settings.metrics_run_window_s
    try:
        scope = None if tenants == "*" else tenants
        summaries = await store.recent_runs(since, settings.metrics_max_runs, scope)
    except StoreUnavailableError:
        # The process metrics, spard_store_errors_total first of all, matter most during the
        # outage: a scrape then has them without the per-run series.
        STORE_ERRORS.inc()
        return _process_metrics(), CONTENT_TYPE_LATEST
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RunCollector(summaries))
    return _process_metrics() + generate_latest(registry), CONTENT_TYPE_LATEST


def _process_metrics() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Record one request's latency."""
    REQUEST_LATENCY.labels(method, route, str(status)).observe(seconds)


class PrometheusEvents:
    """The run layer's events (:class:`~spard.service.runs.run_service.RunEvents`) as
    Prometheus counters."""

    def step(self, outcome: StepOutcomeName) -> None:
        """Count a step: applied, replayed or rejected by the engine."""
        STEPS.labels(outcome).inc()

    def observations(self, accepted: int, duplicates: int, late: int) -> None:
        """Count streamed observations: accepted, duplicate, late."""
        for outcome, count in (("accepted", accepted), ("duplicate", duplicates), ("late", late)):
            if count:
                OBSERVATIONS.labels(outcome).inc(count)

    def store_unavailable(self) -> None:
        """Count a request failed by an unavailable store."""
        STORE_ERRORS.inc()
