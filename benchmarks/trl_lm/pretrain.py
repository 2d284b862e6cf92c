"""The policy of the TRL benchmark: a byte-level BPE tokenizer trained on the synthetic corpus
and a small Qwen2 pretrained on it, on CPU, cached by content hash.

The cache key hashes the corpus itself, the settings and :data:`RECIPE`, so a change to the
corpus or the model retrains; an unchanged one loads in a second.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tqdm import tqdm
from transformers import PreTrainedTokenizerFast, Qwen2ForCausalLM

from benchmarks.trl_lm import tasks
from tests.trl_setup import random_qwen2

RECIPE = 1  # bump when the training procedure below changes what a policy is


@dataclass(frozen=True)
class PretrainConfig:
    """What the pretrained policy is made of."""

    documents: int = 30_000
    vocab_size: int = 512
    hidden_size: int = 192
    layers: int = 4
    heads: int = 6
    kv_heads: int = 2
    intermediate_size: int = 512
    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 1234

    def key(self, documents: list[str]) -> str:
        """The cache key: the recipe, the settings and the corpus's text."""
        digest = hashlib.sha256(json.dumps([RECIPE, asdict(self)], sort_keys=True).encode())
        for document in documents:
            digest.update(document.encode())
        return digest.hexdigest()[:16]


SMOKE = PretrainConfig(documents=2_000, hidden_size=64, layers=2, heads=4, steps=60)


def train_tokenizer(documents: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer of the corpus (decoding gives the text back exactly)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(documents, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>")
    fast.padding_side = "left"  # generation pads prompts on the left
    return fast


def build_model(config: PretrainConfig, tokenizer: PreTrainedTokenizerFast) -> Qwen2ForCausalLM:
    """A Qwen2 of ``config``'s size with random weights."""
    return random_qwen2(
        tokenizer,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        layers=config.layers,
        heads=config.heads,
        kv_heads=config.kv_heads,
        max_positions=256,
        seed=config.seed,
    )


def pretrain(config: PretrainConfig, cache: Path, *, progress: bool = True) -> Path:
    """The folder of the pretrained model and tokenizer (trained now unless cached)."""
    documents = tasks.corpus(config.documents, config.seed)
    folder = cache / f"policy-{config.key(documents)}"
    if (folder / "pretrain.json").exists():
        return folder
    tokenizer = train_tokenizer(documents, config.vocab_size)
    model = build_model(config, tokenizer)
    eos = tokenizer.eos_token_id
    encoded = [[*ids, eos] for ids in tokenizer(documents)["input_ids"]]
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(1.0, step / 50) * 0.5 * (1 + math.cos(math.pi * step / config.steps)),
    )
    rng = np.random.default_rng(config.seed)
    losses, start = [], time.perf_counter()
    model.train()
    for _ in tqdm(range(config.steps), desc="pretraining", disable=not progress):
        batch = [encoded[i] for i in rng.integers(0, len(encoded), size=config.batch_size)]
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):  # right padding for training
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        labels = input_ids.masked_fill(mask == 0, -100)
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    summary = {
        "config": asdict(config),
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": float(np.mean(losses[-50:])),
        "seconds": time.perf_counter() - start,
    }
    (folder / "pretrain.json").write_text(json.dumps(summary, indent=2) + "\n")
    return folder
