"""A reward worker for the streaming tests: sends observations one by one through the SDK.

Run in a thread (``send``) or as a process (``python stream_writer.py URL RUN FILE``, prints the
late observations as JSON), so writers really are separate clients on separate connections.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from spard.client import SpardClient


def send(url: str, run_id: str, observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Observe each one (in order, batched by the client); returns those reported late."""
    with SpardClient(url, observe_batch_size=7, flush_interval_s=0.005) as client:
        for item in observations:
            client.observe(
                run_id,
                item["group_id"],
                item["scores"],
                step=item["step"],
                rollout_index=item["rollout_index"],
            )
        return client.flush().late


if __name__ == "__main__":
    url, run_id, path = sys.argv[1:4]
    with open(path) as handle:
        late = send(url, run_id, json.load(handle))
    print(json.dumps(late))
