"""One arm x seed of the TRL benchmark: TRL's real ``GRPOTrainer`` (GRPOavg, GDPO) or
``SpardGRPOTrainer`` against a real ``spard serve`` (SAW, SPARD, the ablations, the placebo),
trained in two halves with a checkpoint saved and resumed in between, evaluated on the
held-out prompts.

``python -m benchmarks.trl_lm.train --arm spard --seed 0 --policy DIR --work DIR --result
FILE --spard-url URL`` trains in ``--work`` and writes the result to ``--result`` atomically
when the run ends; the benchmark's ``__main__`` runs these as parallel processes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from benchmarks.trl_lm import protocol, tasks
from benchmarks.trl_lm.placebo import PlaceboMixin
from benchmarks.trl_lm.protocol import ALL_ARMS, Settings
from spard.client import SpardClient
from spard.trainer_adapters.trl import STATE_FILE, SpardGRPOTrainer


class TimedTrainer(GRPOTrainer):  # type: ignore[misc]
    """GRPOTrainer that adds up where its time goes (seconds, in ``timings``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.timings: defaultdict[str, float] = defaultdict(float)
        super().__init__(*args, **kwargs)

    def _calculate_rewards(self, *args: Any) -> torch.Tensor:
        start = time.perf_counter()
        rewards = super()._calculate_rewards(*args)
        self.timings["rewards"] += time.perf_counter() - start
        return rewards

    def _generate_and_score_completions(self, inputs: Any) -> dict[str, Any]:
        start = time.perf_counter()
        output = super()._generate_and_score_completions(inputs)
        self.timings["generate_and_score"] += time.perf_counter() - start
        return output


class TimedSpardTrainer(SpardGRPOTrainer, TimedTrainer):  # type: ignore[misc]
    """SpardGRPOTrainer whose own work (the service call, weights, advantage scaling) is
    timed apart from TRL's: ``timings["spard"]``."""

    def _calculate_rewards(self, *args: Any) -> torch.Tensor:
        start, before = time.perf_counter(), self.timings["rewards"]
        rewards = super()._calculate_rewards(*args)
        own = time.perf_counter() - start - (self.timings["rewards"] - before)
        self.timings["spard"] += own
        return rewards

    def _generate_and_score_completions(self, inputs: Any) -> dict[str, Any]:
        start, before = time.perf_counter(), self.timings["generate_and_score"]
        output = super()._generate_and_score_completions(inputs)
        own = time.perf_counter() - start - (self.timings["generate_and_score"] - before)
        self.timings["spard"] += own
        return output


class TimedPlaceboTrainer(PlaceboMixin, TimedSpardTrainer):  # type: ignore[misc]
    """The placebo, timed as SPARD is (its own recomputation counted as SPARD's work)."""


class Probe(TrainerCallback):  # type: ignore[misc]
    """Times each optimizer step, evaluates on held-out prompts every ``every`` steps, and
    stops the first half at ``stop_at`` (the checkpoint is saved there)."""

    def __init__(
        self, evaluate: Any, every: int, stop_at: int | None, log: dict[str, Any], steps: int
    ):
        self.evaluate, self.every, self.stop_at, self.log = evaluate, every, stop_at, log
        self.steps = steps
        self._started = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 0:
            self._evaluate(0, kwargs["model"])

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.log["step_seconds"].append(time.perf_counter() - self._started)
        # The benchmark's progress bars read this.
        (Path(args.output_dir) / "progress").write_text(str(state.global_step))
        if state.global_step % self.every == 0 or state.global_step == self.steps:
            self._evaluate(state.global_step, kwargs["model"])
        if state.global_step == self.stop_at:
            control.should_save = True
            control.should_training_stop = True

    def _evaluate(self, step: int, model: Any) -> None:
        start = time.perf_counter()
        scores = self.evaluate(model)
        self.log["evals"].append({"step": step, **scores, "seconds": time.perf_counter() - start})


def make_evaluator(tokenizer: Any, prompts: list[tasks.Prompt], samples: int, seed: int) -> Any:
    """Held-out evaluation: ``samples`` sampled completions per prompt (the training
    temperature), scored without the judge's noise; the same sampling seed for every arm of a
    seed; the training RNG is left as it was."""
    texts = [prompt["prompt"] for prompt in prompts for _ in range(samples)]
    repeated = [prompt for prompt in prompts for _ in range(samples)]

    def evaluate(model: Any) -> dict[str, Any]:
        saved = torch.random.get_rng_state()
        torch.manual_seed(seed)
        was_training = model.training
        model.eval()
        encoded = tokenizer(texts, return_tensors="pt", padding=True)
        with torch.no_grad():
            generated = model.generate(
                **encoded,
                max_new_tokens=tasks.MAX_COMPLETION_TOKENS,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        completions = tokenizer.batch_decode(
            generated[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True
        )
        model.train(was_training)
        torch.random.set_rng_state(saved)
        scored = tasks.held_out_scores(completions, repeated)
        return {**scored, "mean": float(np.mean(list(scored["scores"].values())))}

    return evaluate


def grpo_config(arm: str, seed: int, out: Path, settings: Settings) -> GRPOConfig:
    """The trainer settings, the same for every arm but the aggregation."""
    return GRPOConfig(
        output_dir=str(out),
        per_device_train_batch_size=settings.per_device_train_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        steps_per_generation=settings.steps_per_generation,
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_tokens,
        temperature=settings.temperature,
        top_k=0,
        learning_rate=settings.learning_rate,
        beta=0.0,
        max_steps=settings.steps,
        save_strategy="steps",
        save_steps=settings.steps // 2,
        save_only_model=False,
        logging_steps=5,
        report_to="tensorboard",
        seed=seed,
        data_seed=seed,
        reward_weights=[1.0] * len(tasks.OBJECTIVES),
        multi_objective_aggregation=ALL_ARMS[arm].aggregation,
        use_cpu=True,
        disable_tqdm=True,
    )


def load_tokenizer(policy: Path) -> PreTrainedTokenizerFast:
    """The policy's own tokenizer. Not AutoTokenizer: it would rebuild a Qwen2Tokenizer from
    the model type, with Qwen2's pre-tokenizer and other token ids."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(policy)
    tokenizer.padding_side = "left"  # not kept by save_pretrained; generation needs it
    return tokenizer


def make_trainer(
    arm: str,
    seed: int,
    policy: Path,
    out: Path,
    settings: Settings,
    spard_url: str | None,
    run_id: str,
) -> TimedTrainer:
    """A fresh trainer of ``arm`` (the same data, data order and settings for every arm; the
    reward functions differ only in the judge's scale, see :data:`protocol.ALL_ARMS`)."""
    spec = ALL_ARMS[arm]
    tokenizer = load_tokenizer(policy)
    model = AutoModelForCausalLM.from_pretrained(policy)
    train = Dataset.from_list(tasks.make_prompts(settings.steps * 10, seed))
    options: dict[str, Any] = {
        "model": model,
        "reward_funcs": tasks.reward_functions(settings.judge_noise, seed, spec.judge_scale),
        "args": grpo_config(arm, seed, out, settings),
        "train_dataset": train,
        "processing_class": tokenizer,
    }
    if spec.trainer == "trl":
        return TimedTrainer(**options)
    client = SpardClient(spard_url) if spard_url else SpardClient.local()
    spard = {
        "spard_client": client,
        "spard_run_id": run_id,
        "spard_strategy": spec.strategy,
        "spard_config": dict(spec.config),
    }
    if spec.trainer == "placebo":
        placebo = protocol.placebo_calibration()
        return TimedPlaceboTrainer(**options, **spard, placebo=placebo, placebo_seed=seed)
    return TimedSpardTrainer(**options, **spard)


def run(
    arm: str, seed: int, policy: Path, out: Path, settings: Settings, spard_url: str | None
) -> dict[str, Any]:
    """Train ``arm`` for ``settings.steps`` steps in two halves (checkpoint, new trainer,
    resume), evaluating on the held-out prompts every ``settings.eval_every`` steps."""
    torch.set_num_threads(1)
    steps = settings.steps
    tokenizer = load_tokenizer(policy)
    held_out = tasks.held_out_prompts()
    evaluate = make_evaluator(tokenizer, held_out, settings.eval_samples, 10_000 + seed)
    log: dict[str, Any] = {"evals": [], "step_seconds": []}
    run_id = f"trl-lm-{arm}-seed{seed}-{os.getpid()}"
    timings: defaultdict[str, float] = defaultdict(float)
    start = time.perf_counter()
    first = make_trainer(arm, seed, policy, out, settings, spard_url, run_id)
    first.add_callback(Probe(evaluate, settings.eval_every, steps // 2, log, steps))
    first.train()
    spard_arm = isinstance(first, SpardGRPOTrainer)
    for name, seconds in first.timings.items():
        timings[name] += seconds
    checkpoint = out / f"checkpoint-{steps // 2}"
    resumed: dict[str, Any] = {"checkpoint": checkpoint.name}
    history: list[dict[str, Any]] = []
    placebo_history: list[dict[str, Any]] = list(getattr(first, "placebo_history", []))
    timings["spard"] += getattr(first, "placebo_seconds", 0.0)
    if spard_arm:
        history = first.spard_client.history(first.spard_run_id)
        # The service forgets the run: only the checkpoint can bring the curriculum back.
        first.spard_client.delete_run(first.spard_run_id)
        first.spard_client.close()
    second = make_trainer(arm, seed, policy, out, settings, spard_url, run_id)
    second.add_callback(Probe(evaluate, settings.eval_every, None, log, steps))
    if spard_arm:
        second.add_callback(ResumeCheck(second, checkpoint, resumed))
    second.train(resume_from_checkpoint=str(checkpoint))
    for name, seconds in second.timings.items():
        timings[name] += seconds
    timings["spard"] += getattr(second, "placebo_seconds", 0.0)
    placebo_history += getattr(second, "placebo_history", [])
    result: dict[str, Any] = {
        "arm": arm,
        "seed": seed,
        "steps": steps,
        "settings": asdict(settings),
        "seconds": time.perf_counter() - start,
        "step_seconds": log["step_seconds"],
        "timings": dict(timings),
        "evals": log["evals"],
        "resume": resumed,
    }
    if spard_arm:
        resumed_at = history[-1]["step"] if history else -1
        later = second.spard_client.history(second.spard_run_id, after=resumed_at)
        # The weights and the spread of the data weights per step (the stats stay in the service).
        fields = ("step", "reward_weights", "sample_weights")
        result["history"] = [{key: entry[key] for key in fields} for entry in history + later]
        second.spard_client.delete_run(second.spard_run_id)
        second.spard_client.close()
    if placebo_history:  # the weights the placebo applied (the service's are the fixed prior)
        result["engine_history"] = result.pop("history", [])
        result["history"] = placebo_history
    return result


class ResumeCheck(TrainerCallback):  # type: ignore[misc]
    """Records whether the resumed run's curriculum is the checkpoint's, before training on."""

    def __init__(self, trainer: SpardGRPOTrainer, checkpoint: Path, record: dict[str, Any]):
        self.trainer, self.checkpoint, self.record = trainer, checkpoint, record

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        saved = json.loads((self.checkpoint / STATE_FILE).read_text())["state"]
        live = self.trainer.spard_client.export_state(self.trainer.spard_run_id)
        self.record["state_restored"] = live == saved
        self.record["last_step"] = live.get("last_step")


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` so that it either holds all of ``text`` or does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=sorted(ALL_ARMS), required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="checkpoints, logs")
    parser.add_argument("--result", type=Path, required=True, help="the result's JSON file")
    parser.add_argument("--settings", default="{}", help="JSON of protocol.Settings fields")
    parser.add_argument("--protocol-hash", default="")
    parser.add_argument("--spard-url", default=None)
    args = parser.parse_args()
    settings = Settings(**json.loads(args.settings))
    result = run(args.arm, args.seed, args.policy, args.work, settings, args.spard_url)
    result["protocol_hash"] = args.protocol_hash
    result["code_commit"] = os.environ.get("TRL_LM_COMMIT", "")
    write_atomically(args.result, json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
