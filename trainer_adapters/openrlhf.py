"""OpenRLHF glue: a per-sample ``reward_func`` that streams observations to SPARD, and the
``compute_advantages_and_returns`` override for full SPARD.

OpenRLHF 0.11 loads the ``.py`` file given to ``--reward.remote_url`` (``--remote_rm_url`` in
older releases) and calls ``reward_func(queries, prompts, labels)`` one sample at a time, in
many threads and Ray workers, expecting ``{"rewards", "scores", "extra_logs"}``. Write that file
as::

    from spard.trainer_adapters.openrlhf import make_reward_func

    reward_func = make_reward_func(
        {"correctness": check_answer, "format": check_format},   # (query, prompt, label) -> float
        url="http://spard:8000", api_key="...", run_id="my-run",
    )

Each call scores the sample with every objective's scorer, reports the observation (group =
the prompt and label; the service assigns the rollout index), and returns the scores combined
with the run's current PAWA weights, plus every objective's score in ``extra_logs``.

What reaches the policy through rewards is PAWA only. RADR's per-prompt importance cannot act
through rewards under ``group_norm``: scaling one prompt's rewards by a constant leaves its
group-normalised advantages unchanged. For full SPARD, also mix
:class:`SpardAdvantagesMixin` into the experience maker: it commits the step and scales each
sample's advantages by its prompt's sample weight.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from spard.client import SpardClient
from spard.trainer_adapters._rewards import (
    ProcessClient,
    checked_score,
    combine,
    logged,
    prompt_group_id,
    report,
)

__all__ = ["SpardAdvantagesMixin", "combine", "make_reward_func", "prompt_group_id"]
Scorer = Callable[[str, str, Any], "float | None"]
GroupIdFn = Callable[[str, Any], str]


def make_reward_func(
    scorers: Mapping[str, Scorer],
    *,
    run_id: str,
    url: str = "http://127.0.0.1:8000",
    api_key: str | None = None,
    client: SpardClient | None = None,
    group_id: GroupIdFn = prompt_group_id,
    step: Callable[[], int | None] | None = None,
    weights_max_age_s: float = 1.0,
) -> Callable[..., dict[str, Any]]:
    """An OpenRLHF ``reward_func(queries, prompts, labels, **kwargs)`` over ``scorers``.

    ``scorers``: objective name -> ``scorer(query, prompt, label)`` returning a float, or None
    when the objective does not apply to the sample (missing). ``step``: which step a sample
    belongs to; by default the run's open step (the one after the last committed), right for
    synchronous GRPO. Weights are reused for ``weights_max_age_s``, then revalidated (ETag).
    Thread-safe; each call returns once its observation is stored, so a commit made after
    OpenRLHF has the rewards never misses it. If the service is unreachable,
    the sample still gets a reward (last known weights) and a warning is logged.
    """
    names = list(scorers)
    if not names:
        raise ValueError("scorers: give at least one objective")
    clients = ProcessClient(
        lambda: client or SpardClient(url, api_key=api_key, weights_max_age_s=weights_max_age_s)
    )

    def reward_func(
        queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **_: Any
    ) -> dict[str, Any]:
        spard_client = clients.get()
        rows = [
            {name: checked_score(name, scorers[name](query, prompt, label)) for name in names}
            for query, prompt, label in zip(queries, prompts, labels, strict=True)
        ]
        groups = [group_id(prompt, label) for prompt, label in zip(prompts, labels, strict=True)]
        at = step() if step is not None else None
        weights = report(spard_client, run_id, rows, groups, at)
        rewards = [combine(row, weights) for row in rows]
        extra_logs = {name: [logged(row[name]) for row in rows] for name in names}
        extra_logs.update({f"spard_weight/{name}": [weights[name]] * len(rows) for name in names})
        return {
            "rewards": _tensor(rewards),
            "scores": _tensor(rewards),
            "extra_logs": {key: _tensor(values) for key, values in extra_logs.items()},
        }

    return reward_func


def _tensor(values: list[float]) -> Any:
    try:
        import torch
    except ImportError:  # OpenRLHF always has torch; plain lists keep this usable without it
        return values
    return torch.tensor(values, dtype=torch.float32)


class SpardAdvantagesMixin:
    """Full SPARD in OpenRLHF: put this first in a subclass of the experience maker::

        class SpardExperienceMaker(SpardAdvantagesMixin, RemoteExperienceMaker):
            spard_run_id = "my-run"
            spard_client = SpardClient("http://spard:8000", api_key="...")

    After OpenRLHF computed the (group-normalised) advantages, it commits the step from the
    streamed observations and multiplies each sample's advantages by its prompt's RADR sample
    weight (zero-signal prompts get 0). Needs ``prompts`` and ``labels`` on each experience
    (OpenRLHF >= 0.8) and the same ``spard_group_id`` as the reward function.
    """

    spard_client: SpardClient
    spard_run_id: str
    spard_group_id: GroupIdFn = staticmethod(prompt_group_id)
    _spard_next_step: int | None = None

    def compute_advantages_and_returns(self, experiences: list[Any], **kwargs: Any) -> Any:
        experiences = super().compute_advantages_and_returns(experiences, **kwargs)  # type: ignore[misc]
        if self._spard_next_step is None:
            last = self.spard_client.get_run(self.spard_run_id).last_step
            self._spard_next_step = 0 if last is None else last + 1
        outcome = self.spard_client.commit(self.spard_run_id, self._spard_next_step)
        self._spard_next_step += 1
        weight_of = dict(zip(outcome.group_ids or [], outcome.sample_weights.tolist(), strict=True))
        for experience in experiences:
            groups = [
                self.spard_group_id(prompt, label)
                for prompt, label in zip(experience.prompts, experience.labels, strict=True)
            ]
            scale = [weight_of.get(group, 1.0) for group in groups]
            advantages = experience.advantages
            factor = advantages.new_tensor(scale).reshape(-1, *([1] * (advantages.dim() - 1)))
            experience.advantages = advantages * factor
        return experiences
