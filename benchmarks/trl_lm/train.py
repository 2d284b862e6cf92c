"""One arm x seed of the TRL benchmark: TRL's real ``GRPOTrainer`` (GRPOavg, GDPO) or
``SpardGRPOTrainer`` against a real ``spard serve``, trained in two halves with a checkpoint
saved and resumed in between, evaluated on held-out prompts.

``python -m benchmarks.trl_lm.train --arm spard --seed 0 --policy DIR --out DIR
--spard-url URL`` writes ``run.json`` into ``--out``; the benchmark's ``__main__`` runs these
as parallel processes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from benchmarks.trl_lm import tasks
from spard.client import SpardClient
from spard.trainer_adapters.trl import STATE_FILE, SpardGRPOTrainer

ARMS = ("grpo_avg", "gdpo", "spard")
EVAL_SAMPLES = 2  # completions per held-out prompt


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


class Probe(TrainerCallback):  # type: ignore[misc]
    """Times each optimizer step, evaluates on held-out prompts every ``every`` steps, and
    stops the first half at ``stop_at`` (the checkpoint is saved there)."""

    def __init__(self, evaluate: Any, every: int, stop_at: int | None, log: dict[str, Any]):
        self.evaluate, self.every, self.stop_at, self.log = evaluate, every, stop_at, log
        self._started = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 0:
            self.log["evals"].append({"step": 0, **self.evaluate(kwargs["model"])})

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.log["step_seconds"].append(time.perf_counter() - self._started)
        # The benchmark's progress bars read this.
        (Path(args.output_dir) / "progress").write_text(str(state.global_step))
        if state.global_step % self.every == 0:
            self.log["evals"].append({"step": state.global_step, **self.evaluate(kwargs["model"])})
        if state.global_step == self.stop_at:
            control.should_save = True
            control.should_training_stop = True


def make_evaluator(tokenizer: Any, prompts: list[tasks.Prompt], seed: int) -> Any:
    """Held-out evaluation: ``EVAL_SAMPLES`` sampled completions per prompt (the training
    temperature), scored without the judge's noise; the training RNG is left as it was."""
    texts = [prompt["prompt"] for prompt in prompts for _ in range(EVAL_SAMPLES)]
    repeated = [prompt for prompt in prompts for _ in range(EVAL_SAMPLES)]

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
        scores = tasks.held_out_scores(completions, repeated)
        return {"scores": scores, "mean": float(np.mean(list(scores.values())))}

    return evaluate


def grpo_config(arm: str, seed: int, out: Path, steps: int, save_at: int) -> GRPOConfig:
    """The trainer settings, the same for every arm but the aggregation."""
    return GRPOConfig(
        output_dir=str(out),
        per_device_train_batch_size=32,
        gradient_accumulation_steps=2,
        steps_per_generation=2,  # one generation batch of 8 prompts x 8 per optimizer step
        num_generations=8,
        max_completion_length=tasks.MAX_COMPLETION_TOKENS,
        temperature=1.0,
        top_k=0,
        learning_rate=5e-4,
        beta=0.0,
        max_steps=steps,
        save_strategy="steps",
        save_steps=save_at,
        logging_steps=5,
        report_to="tensorboard",
        seed=seed,
        data_seed=seed,
        reward_weights=[1.0] * len(tasks.OBJECTIVES),
        multi_objective_aggregation="normalize_then_sum" if arm == "gdpo" else "sum_then_normalize",
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
    arm: str, seed: int, policy: Path, out: Path, steps: int, spard_url: str | None, run_id: str
) -> TimedTrainer:
    """A fresh trainer of ``arm`` (the same data, data order and settings for every arm)."""
    tokenizer = load_tokenizer(policy)
    model = AutoModelForCausalLM.from_pretrained(policy)
    train = Dataset.from_list(tasks.make_prompts(steps * 10, seed))
    options: dict[str, Any] = {
        "model": model,
        "reward_funcs": tasks.reward_functions(tasks.JUDGE_NOISE, seed),
        "args": grpo_config(arm, seed, out, steps, steps // 2),
        "train_dataset": train,
        "processing_class": tokenizer,
    }
    if arm == "spard":
        client = SpardClient(spard_url) if spard_url else SpardClient.local()
        return TimedSpardTrainer(**options, spard_client=client, spard_run_id=run_id)
    return TimedTrainer(**options)


def run(
    arm: str, seed: int, policy: Path, out: Path, steps: int, spard_url: str | None
) -> dict[str, Any]:
    """Train ``arm`` for ``steps`` steps in two halves (checkpoint, new trainer, resume)."""
    torch.set_num_threads(1)
    tokenizer = load_tokenizer(policy)
    held_out = tasks.make_prompts(tasks.HELD_OUT_PROMPTS, 10_000 + seed, evaluation=True)
    evaluate = make_evaluator(tokenizer, held_out, seed)
    every = max(1, steps // 10)
    log: dict[str, Any] = {"evals": [], "step_seconds": []}
    run_id = f"trl-lm-{os.getpid()}-seed{seed}"
    timings: defaultdict[str, float] = defaultdict(float)
    start = time.perf_counter()
    first = make_trainer(arm, seed, policy, out, steps, spard_url, run_id)
    first.add_callback(Probe(evaluate, every, steps // 2, log))
    first.train()
    for name, seconds in first.timings.items():
        timings[name] += seconds
    checkpoint = out / f"checkpoint-{steps // 2}"
    resumed: dict[str, Any] = {"checkpoint": checkpoint.name}
    history: list[dict[str, Any]] = []
    if arm == "spard":
        history = first.spard_client.history(first.spard_run_id)
        # The service forgets the run: only the checkpoint can bring the curriculum back.
        first.spard_client.delete_run(first.spard_run_id)
        first.spard_client.close()
    second = make_trainer(arm, seed, policy, out, steps, spard_url, run_id)
    second.add_callback(Probe(evaluate, every, None, log))
    if arm == "spard":
        second.add_callback(ResumeCheck(second, checkpoint, resumed))
    second.train(resume_from_checkpoint=str(checkpoint))
    for name, seconds in second.timings.items():
        timings[name] += seconds
    result: dict[str, Any] = {
        "arm": arm,
        "seed": seed,
        "steps": steps,
        "seconds": time.perf_counter() - start,
        "step_seconds": log["step_seconds"],
        "timings": dict(timings),
        "evals": log["evals"],
        "resume": resumed,
    }
    if arm == "spard":
        resumed_at = history[-1]["step"] if history else -1
        later = second.spard_client.history(second.spard_run_id, after=resumed_at)
        # The weights and the spread of the data weights per step (the stats stay in the service).
        fields = ("step", "reward_weights", "sample_weights")
        result["history"] = [{key: entry[key] for key in fields} for entry in history + later]
        second.spard_client.close()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=ARMS, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--spard-url", default=None)
    args = parser.parse_args()
    result = run(args.arm, args.seed, args.policy, args.out, args.steps, args.spard_url)
    (args.out / "run.json").write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
