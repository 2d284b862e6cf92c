"""A tiny, offline TRL GRPO setup: random Qwen2 from a config, char tokenizer, toy rewards."""

from __future__ import annotations

from typing import Any

from datasets import Dataset
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
from trl import GRPOConfig


def random_qwen2(
    tokenizer: PreTrainedTokenizerFast,
    *,
    hidden_size: int,
    intermediate_size: int,
    layers: int,
    heads: int,
    kv_heads: int,
    max_positions: int,
    seed: int,
) -> Qwen2ForCausalLM:
    """A Qwen2 of this size with random weights (seeded), sized to ``tokenizer``'s vocabulary and
    using its pad and eos tokens (eos doubles as bos), input and output embeddings tied."""
    import torch

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    return Qwen2ForCausalLM(config)


def tiny_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Qwen2ForCausalLM:
    return random_qwen2(
        tokenizer,
        hidden_size=32,
        intermediate_size=64,
        layers=2,
        heads=2,
        kv_heads=1,
        max_positions=128,
        seed=seed,
    )


def prompts_dataset(count: int = 32) -> Dataset:
    words = ["say hi", "count to 3", "spell cat", "add 1 and 2", "name a colour", "greet me"]
    return Dataset.from_dict({"prompt": [words[i % len(words)] + ":" for i in range(count)]})


def has_vowel(completions: list[str], **_: Any) -> list[float]:
    return [float(any(c in "aeiou" for c in text)) for text in completions]


def length_score(completions: list[str], **_: Any) -> list[float]:
    return [min(len(text), 8) / 8.0 for text in completions]


def digits_score(completions: list[str], **_: Any) -> list[float | None]:
    # Not applicable (None) to completions that start with a space: a missing score.
    return [
        None if text.startswith(" ") else float(sum(c.isdigit() for c in text))
        for text in completions
    ]


REWARDS = [has_vowel, length_score, digits_score]


def grpo_config(output_dir: str, **overrides: Any) -> GRPOConfig:
    options: dict[str, Any] = {
        "output_dir": output_dir,
        "per_device_train_batch_size": 8,
        "num_generations": 4,
        "max_completion_length": 8,
        "max_steps": 3,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "report_to": "none",
        "bf16": False,
        "use_vllm": False,
        "save_strategy": "no",
        "beta": 0.0,
        "use_cpu": True,
        "seed": 0,
        "dataloader_num_workers": 0,
    }
    return GRPOConfig(**{**options, **overrides})


def record_advantages(trainer: Any) -> list[Any]:
    """The advantages each generation batch of ``trainer`` ends with, appended as it trains."""
    advantages: list[Any] = []
    scored = trainer._generate_and_score_completions

    def record(inputs: Any) -> Any:
        output = scored(inputs)
        advantages.append(output["advantages"].clone())
        return output

    trainer._generate_and_score_completions = record
    return advantages
