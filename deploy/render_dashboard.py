"""Render the Grafana dashboard's panels with matplotlib from a Prometheus HTTP API.

Grafana cannot be installed on the project's build machine, so the README's dashboard picture
is drawn from the same PromQL, run by a real Prometheus scraping a real service:

    python deploy/render_dashboard.py --prometheus http://127.0.0.1:9090 --minutes 2 \
        --out deploy/grafana/dashboard.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DASHBOARD = Path(__file__).parent / "grafana" / "dashboards" / "spard.json"


def series(prometheus: str, expression: str, start: float, end: float) -> list[dict]:
    answer = httpx.get(
        f"{prometheus}/api/v1/query_range",
        params={"query": expression, "start": start, "end": end, "step": 2},
        timeout=10,
    ).json()
    if answer["status"] != "success":
        raise RuntimeError(f"{expression}: {answer}")
    return answer["data"]["result"]


def label(metric: dict[str, str]) -> str:
    keep = [
        metric[k]
        for k in ("run_id", "objective", "stat", "outcome", "route", "status")
        if k in metric
    ]
    return " ".join(keep) or "all"


def render(prometheus: str, minutes: float, out: Path) -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    end = time.time()
    start = end - 60 * minutes
    columns = 3
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.2 * rows))
    for axis, panel in zip(axes.flat, panels, strict=False):
        for result in series(prometheus, panel["targets"][0]["expr"], start, end):
            times = [float(t) - start for t, _ in result["values"]]
            values = [float(v) for _, v in result["values"]]
            axis.plot(times, values, label=label(result["metric"]))
        axis.set_title(panel["title"], fontsize=10)
        axis.set_xlabel("seconds", fontsize=8)
        axis.tick_params(labelsize=7)
        if axis.lines and len(axis.lines) <= 8:
            axis.legend(fontsize=6)
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    figure.suptitle("SPARD dashboard (matplotlib from the Prometheus API; same PromQL as Grafana)")
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=DASHBOARD.parent.parent / "dashboard.png")
    args = parser.parse_args()
    render(args.prometheus, args.minutes, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
