"""SpardGRPOTrainer, run for real: TRL's GRPOTrainer on CPU, a tiny model, a real service."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the trl extra is not installed")
import torch
from char_tokenizer import char_tokenizer
from trl import GRPOTrainer
from trl_setup import REWARDS, grpo_config, prompts_dataset, record_advantages, tiny_model

from spard.client import SpardClient
from spard.trainer_adapters.trl import STATE_FILE, SpardGRPOTrainer
from tests.servers import ServiceProcess, free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service():
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    yield server
    server.stop()


def make_trainer(tmp_path, client, strategy="spard", run_id=None, spard_config=None, **config):
    tokenizer = char_tokenizer()
    return SpardGRPOTrainer(
        model=tiny_model(tokenizer),
        reward_funcs=REWARDS,
        args=grpo_config(str(tmp_path), **config),
        train_dataset=prompts_dataset(),
        processing_class=tokenizer,
        spard_client=client,
        spard_strategy=strategy,
        spard_config={"warmup": 1, **(spard_config or {})},
        spard_run_id=run_id,
    )


def test_trainer_steps_the_curriculum_and_scales_advantages(tmp_path, service, monkeypatch):
    base_outputs, final_outputs = [], []
    original = GRPOTrainer._generate_and_score_completions

    def record_base(self, inputs):
        output = original(self, inputs)
        base_outputs.append(output["advantages"].clone())
        return output

    monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", record_base)
    client = SpardClient(service.url)
    # PAWA and RADR over TRL's own summed advantages: TRL's advantages times data weights.
    trainer = make_trainer(
        tmp_path, client, spard_config={"advantage_mode": "sum", "data_rule": "radr_mass"}
    )
    wrapped = trainer._generate_and_score_completions
    outcomes = []

    def record_final(inputs):
        output = wrapped(inputs)
        final_outputs.append(output["advantages"].clone())
        return output

    trainer._generate_and_score_completions = record_final
    original_step = client.step
    client.step = lambda *a, **k: outcomes.append(original_step(*a, **k)) or outcomes[-1]
    initial_weights = trainer.reward_weights.clone()
    trainer.train()

    history = client.history(trainer.spard_run_id)
    assert [entry["step"] for entry in history] == [0, 1, 2]
    assert set(history[0]["reward_weights"]) == {"has_vowel", "length_score", "digits_score"}
    assert not torch.allclose(trainer.reward_weights, initial_weights)
    # The curriculum's weights, rescaled to the total of TRL's weights (three 1s).
    assert torch.allclose(
        trainer.reward_weights.double(), 3 * torch.tensor(outcomes[-1].reward_weights)
    )
    assert len(base_outputs) == len(final_outputs) == len(outcomes) == 3
    for base, final, outcome in zip(base_outputs, final_outputs, outcomes, strict=True):
        per_completion = torch.tensor(outcome.sample_weights).repeat_interleave(4).to(base.dtype)
        assert torch.allclose(final, base * per_completion)
    assert any(not torch.allclose(f, b) for f, b in zip(final_outputs, base_outputs, strict=True))

    logged = {key for entry in trainer.state.log_history for key in entry}
    for name in ("has_vowel", "length_score", "digits_score"):
        assert f"reward_weights/{name}" in logged
    assert {"spard/sample_weight_mean", "spard/zero_signal_frac", "spard/held"} <= logged


def test_checkpoint_saves_and_resume_imports_the_curriculum(tmp_path, service):
    client = SpardClient(service.url)
    trainer = make_trainer(tmp_path, client, save_strategy="steps", save_steps=2, max_steps=2)
    trainer.train()
    checkpoint = tmp_path / "checkpoint-2"
    saved = json.loads((checkpoint / STATE_FILE).read_text())
    assert saved["run_id"] == trainer.spard_run_id
    assert saved["state"]["last_step"] == 1

    # The run moves on past the checkpoint; resuming rolls the curriculum back to it.
    import numpy as np

    client.step(trainer.spard_run_id, np.random.rand(2, 4, 3), step=5)
    resumed = make_trainer(
        tmp_path, client, run_id=trainer.spard_run_id, save_strategy="no", max_steps=3
    )
    resumed.train(resume_from_checkpoint=str(checkpoint))
    steps = [entry["step"] for entry in client.history(trainer.spard_run_id)]
    assert steps == [0, 1, 2]


def test_evaluation_leaves_the_curriculum_alone(tmp_path, service):
    client = SpardClient(service.url)
    trainer = make_trainer(tmp_path, client)
    trainer.evaluate(eval_dataset=prompts_dataset(8))
    assert client.get_run(trainer.spard_run_id).steps_applied == 0


def test_local_mode_needs_no_service(tmp_path):
    trainer = make_trainer(tmp_path, SpardClient.local(), max_steps=2)
    assert trainer.multi_objective_aggregation == "sum_then_normalize"
    trainer.train()
    assert trainer.spard_client.get_run(trainer.spard_run_id).steps_applied == 2


def test_decoupled_strategies_get_trls_normalize_then_sum(tmp_path):
    trainer = make_trainer(tmp_path, SpardClient.local(), strategy="spard_gdpo", max_steps=1)
    assert trainer.multi_objective_aggregation == "normalize_then_sum"
    trainer.train()
    assert trainer.spard_client.get_run(trainer.spard_run_id).steps_applied == 1


def test_two_processes_end_with_identical_weights(tmp_path, service):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun
    script = Path(__file__).with_name("trl_two_process.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    command = [torchrun, "--nproc_per_node", "2", "--master_port", str(free_port())]
    command += [str(script), "--server", service.url, "--out", str(tmp_path)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as torchrun_process:
        try:
            stdout, stderr = torchrun_process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            pytest.fail(f"torchrun hung past 300 s; its stderr ends:\n{_stop(torchrun_process)}")
    assert torchrun_process.returncode == 0, stdout[-3000:] + stderr[-5000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["reward_weights"] == ranks[1]["reward_weights"]
    assert ranks[0]["run_id"] == ranks[1]["run_id"]
    assert ranks[0]["reward_weights"] != [1 / 3] * 3
    history = SpardClient(service.url).history(ranks[0]["run_id"])
    assert [entry["step"] for entry in history] == [0, 1, 2]
    assert history[0]["sample_weights"]["prompts"] == 4  # 2 prompts per rank, gathered


def _stop(torchrun_process: subprocess.Popen[str]) -> str:
    """Stop a hung torchrun and its ranks; the end of what they wrote to stderr (each rank's
    threads' stacks among it: trl_two_process.py). Each rank runs in a session of its own, so
    only torchrun can stop them: SIGTERM makes it stop its ranks (SIGKILL 30 s later)."""
    torchrun_process.terminate()
    try:
        _, stderr = torchrun_process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        torchrun_process.kill()  # orphaned ranks may still hold the pipes: stop reading
        return "(torchrun did not stop its ranks within 60 s; their output is lost)"
    return stderr[-20000:]


def test_weights_reach_the_users_report_to_backend(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = make_trainer(tmp_path, SpardClient.local(), max_steps=2, report_to="tensorboard")
    trainer.train()
    (events,) = tmp_path.rglob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events.parent))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    for name in trainer.spard_objectives:
        assert f"train/reward_weights/{name}" in tags, tags
        assert f"train/rewards/{name}/mean" in tags


def test_the_asynchronous_trainer_is_refused_with_the_reason(tmp_path):
    """TRL's AsyncGRPOTrainer sums rewards with weight 1 in its rollout workers: SPARD has no
    weights to set there, and says so rather than training without the curriculum."""
    from trl.experimental.async_grpo import AsyncGRPOConfig

    args = AsyncGRPOConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, bf16=False)
    tokenizer = char_tokenizer()
    with pytest.raises(TypeError, match="AsyncGRPOTrainer: its rollout workers sum the rewards"):
        SpardGRPOTrainer(
            model=tiny_model(tokenizer),
            reward_funcs=REWARDS,
            args=args,
            train_dataset=prompts_dataset(),
            processing_class=tokenizer,
        )


def test_the_scaled_rule_hands_trl_weights_divided_by_the_running_scales(tmp_path):
    client = SpardClient.local()
    outcomes = []
    original_step = client.step
    client.step = lambda *a, **k: outcomes.append(original_step(*a, **k)) or outcomes[-1]
    trainer = make_trainer(tmp_path, client, spard_config={"advantage_mode": "scaled"}, max_steps=2)
    assert trainer.multi_objective_aggregation == "sum_then_normalize"
    trainer.train()
    last = outcomes[-1]
    scales = torch.tensor([last.stats[name]["scale"] for name in trainer.spard_objectives])
    assert (scales > 0).all()
    expected = 3 * torch.tensor(last.reward_weights) / scales  # TRL's weights total 3
    assert torch.allclose(trainer.reward_weights.double(), expected.double(), rtol=1e-6)
    assert not torch.allclose(trainer.reward_weights.double(), torch.tensor(last.reward_weights))


# The default's decoupled_floor, and the field's methods (docs/field-methods.md).
@pytest.mark.parametrize("strategy", ["spard", "gd2po_hard", "gd2po_snr", "mo_grpo", "drw"])
def test_a_rule_trl_cannot_compute_trains_on_the_engines_advantages(tmp_path, strategy):
    client = SpardClient.local()
    outcomes = []
    original_step = client.step
    client.step = lambda *a, **k: outcomes.append(original_step(*a, **k)) or outcomes[-1]
    trainer = make_trainer(tmp_path, client, strategy=strategy, max_steps=2)
    assert trainer.spard.engine_advantages
    finals = record_advantages(trainer)
    trainer.train()
    assert len(outcomes) == len(finals) == 2
    for outcome, final in zip(outcomes, finals, strict=True):
        expected = torch.tensor(outcome.advantages.reshape(-1), dtype=final.dtype)
        assert torch.equal(final, expected)
        assert final.abs().sum() > 0
