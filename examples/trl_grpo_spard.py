"""GRPO with SPARD in TRL: three reward functions, weights and per-prompt importance from SPARD.

Runs offline as is (a tiny random Qwen2 and a char tokenizer built here, CPU):
    python examples/trl_grpo_spard.py --max-steps 5
With a real model and a running service (`spard serve`):
    python examples/trl_grpo_spard.py --model Qwen/Qwen2.5-0.5B-Instruct --spard-url http://127.0.0.1:8000

The diff from a plain TRL script is three lines: the import, `SpardGRPOTrainer` instead of
`GRPOTrainer`, and the `spard_client=` argument.
"""

from __future__ import annotations

import argparse
import re

from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig

from spard.client import SpardClient  # + 1
from spard.trainer_adapters.trl import SpardGRPOTrainer  # + 2


def correctness(completions: list[str], answer: list[str], **_: object) -> list[float]:
    return [float(answer_ in text) for text, answer_ in zip(completions, answer, strict=True)]


def format_ok(completions: list[str], **_: object) -> list[float]:
    return [float(bool(re.search(r"\d", text))) for text in completions]


def brevity(completions: list[str], **_: object) -> list[float | None]:
    return [None if not text else 1.0 / (1.0 + len(text) / 16) for text in completions]


def tiny_offline_model() -> tuple[object, object]:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789 +=?:.")
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    tokenizer.padding_side = "left"
    config = Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    return Qwen2ForCausalLM(config), tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model id or path; default: a tiny offline model")
    parser.add_argument("--spard-url", help="the SPARD service; default: in-process (local mode)")
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--output-dir", default="trl-spard-out")
    args = parser.parse_args()

    if args.model:
        model = AutoModelForCausalLM.from_pretrained(args.model)
        tokenizer = AutoTokenizer.from_pretrained(args.model, padding_side="left")
    else:
        model, tokenizer = tiny_offline_model()
    dataset = Dataset.from_dict(
        {
            "prompt": [f"{a}+{b}=" for a in range(8) for b in range(8)],
            "answer": [str(a + b) for a in range(8) for b in range(8)],
        }
    )
    trainer = SpardGRPOTrainer(  # was: GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=[correctness, format_ok, brevity],
        train_dataset=dataset,
        args=GRPOConfig(
            output_dir=args.output_dir,
            max_steps=args.max_steps,
            per_device_train_batch_size=8,
            num_generations=4,
            max_completion_length=8,
            logging_steps=1,
            report_to="none",
            save_strategy="no",
            use_cpu=not args.model,
        ),
        spard_client=SpardClient(args.spard_url) if args.spard_url else SpardClient.local(),  # + 3
    )
    trainer.train()
    logged = trainer.state.log_history[-2].items()
    final = {k: v for k, v in logged if k.startswith(("spard/", "reward_weights/"))}
    print("SPARD at the last step:", final)


if __name__ == "__main__":
    main()
