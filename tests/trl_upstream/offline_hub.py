"""Materialise, without network, the hub models and datasets TRL's GRPO tests load.

Models are tiny, randomly initialised and laid out as a Hugging Face hub cache
(``<cache>/hub/models--org--name/snapshots/<rev>/`` plus ``refs/main``), so that
``from_pretrained("org/name")`` resolves them with ``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE``
pointing at ``<cache>/hub``. Their tokenizers are byte-level BPEs trained here on a small
corpus; the Qwen-style ones are padded with filler tokens so that Qwen's special tokens keep
their real ids (``<|endoftext|>`` 151643, ``<|im_end|>`` 151645, ...), which some tests
hard-code, when built with ``qwen_ids`` (slow on CPU: a 152k-token embedding); by default
they are small and the two tests that hard-code those ids are skipped by the plugin.
Datasets are parquet files under ``<cache>/datasets/<org>/<name>/<config>/``, served to
``datasets.load_dataset`` by the pytest plugin.

Usage: ``python -m tests.trl_upstream.offline_hub CACHE_DIR [--qwen-ids]``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["CACHE_VERSION", "build", "cache_key", "ensure"]

CACHE_VERSION = "1"
REVISION = "0" * 40
QWEN_PAD_ID = 151643  # first special id of Qwen2.5's tokenizer
QWEN_VOCAB = 151936  # Qwen2.5 / Qwen3 embedding size

QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
]
QWEN3_EXTRA = ["<tool_response>", "</tool_response>", "<think>", "</think>"]
LLAMA_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|finetune_right_pad_id|>",
]
GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]

QWEN_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\n# Tools\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
    "{{- '\\n</tools><|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'tool' %}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message['content'] "
    "+ '\\n</tool_response><|im_end|>\\n' }}"
    "{%- elif message['role'] == 'assistant' and message.get('tool_calls') %}"
    "{{- '<|im_start|>assistant\\n' + (message['content'] or '') }}"
    "{%- for tc in message['tool_calls'] %}"
    "{%- set f = tc['function'] if tc.get('function') else tc %}"
    "{{- '<tool_call>\\n{\"name\": \"' + f['name'] + '\", \"arguments\": ' "
    "+ (f['arguments'] | tojson) + '}\\n</tool_call>' }}{%- endfor %}{{- '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)
LLAMA_TEMPLATE = (
    "{{- '<|begin_of_text|>' }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] "
    "+ '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
GEMMA_TEMPLATE = (
    "{{- '<bos>' }}{%- for message in messages %}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{- '<start_of_turn>' + role + '\\n' + message['content'] + '<end_of_turn>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<start_of_turn>model\\n' }}{%- endif %}"
)

# The Zen of Python as (prompt, completion, question) triples, as in trl-internal-testing/zen.
ZEN = [
    ("Beautiful is better than", " ugly.", "What is better than ugly?"),
    ("Explicit is", " better than implicit.", "What is better than implicit?"),
    ("Simple is better", " than complex.", "What is better than complex?"),
    ("Complex", " is better than complicated.", "What is better than complicated?"),
    ("Flat is better than", " nested.", "What is better than nested?"),
    ("Sparse is better", " than dense.", "What is better than dense?"),
    ("Readability", " counts.", "What counts?"),
    (
        "Special cases aren't special",
        " enough to break the rules.",
        "Are special cases enough to break the rules?",
    ),
    ("Although practicality beats", " purity.", "What beats purity?"),
    ("Errors should never", " pass silently.", "What should never pass silently?"),
    ("Unless explicitly", " silenced.", "When can errors pass silently?"),
    (
        "In the face of ambiguity, refuse",
        " the temptation to guess.",
        "What should you do in the face of ambiguity?",
    ),
    (
        "There should be one-- and preferably only one --",
        "obvious way to do it.",
        "How many ways should there be to do it?",
    ),
    (
        "Although that way may not be obvious at first unless you're",
        " Dutch.",
        "For whom may the way not be obvious at first?",
    ),
    ("Now is better than", " never.", "What is better than never?"),
    ("Although never is often better than", " *right* now.", "What is never often better than?"),
    (
        "If the implementation is hard to explain, it's",
        " a bad idea.",
        "What does it mean if the implementation is hard to explain?",
    ),
    (
        "If the implementation is easy to explain, it",
        " may be a good idea.",
        "What does it mean if the implementation is easy to explain?",
    ),
    (
        "Namespaces are one honking great idea --",
        " let's do more of those!",
        "What are namespaces?",
    ),
]
N_TRAIN = 17  # the last two aphorisms form the test split


def cache_key(qwen_ids: bool = False) -> str:
    """Version key of the cache: this file, the library versions that write it, the variant."""
    import tokenizers
    import transformers

    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    variant = "qwen-ids" if qwen_ids else "small"
    versions = f"tf{transformers.__version__}-tok{tokenizers.__version__}"
    return f"{CACHE_VERSION}-{digest}-{versions}-{variant}"


def _corpus() -> list[str]:
    lines = [p + c for p, c, _ in ZEN] + [q for _, _, q in ZEN]
    extra = (
        "The quick brown fox jumps over the lazy dog. 0123456789\n"
        "{}[]()<>:;,.!?'\"-_=+*/\\|@#$%^&~`\n"
        "def multiply(a, b):\n    return a * b\n"
        '{"name": "multiply_tool", "arguments": {"a": 3, "b": 4}}\n'
        "I don't know any tool. Done! system user assistant tool"
    )
    return lines + [extra] * 4


def _bpe(specials: list[str], pad_to: int | None, vocab_size: int = 600) -> Any:
    """A byte-level BPE tokenizer; with ``pad_to``, filler tokens push the specials to that id."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    if pad_to is not None:
        model = json.loads(tok.to_str())["model"]
        vocab: dict[str, int] = model["vocab"]
        merges: list[tuple[str, str]] = [
            (m.split(" ")[0], m.split(" ")[1]) if isinstance(m, str) else (m[0], m[1])
            for m in model["merges"]
        ]
        i = 0
        while len(vocab) < pad_to:
            name = f"fill{i}"
            if name not in vocab:
                vocab[name] = len(vocab)
            i += 1
        padded = Tokenizer(models.BPE(vocab=vocab, merges=merges))
        padded.pre_tokenizer = tok.pre_tokenizer
        padded.decoder = tok.decoder
        tok = padded
    tok.add_special_tokens(specials)
    return tok


def _fast_tokenizer(tok: Any, template: str, **special: str) -> Any:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **special)
    fast.chat_template = template
    fast.padding_side = "left" if special.get("padding_side") == "left" else "right"
    return fast


def _qwen_tokenizer(qwen3: bool, qwen_ids: bool) -> Any:
    specials = QWEN_SPECIALS + (QWEN3_EXTRA if qwen3 else [])
    tok = _bpe(specials, pad_to=QWEN_PAD_ID if qwen_ids else None)
    return _fast_tokenizer(tok, QWEN_TEMPLATE, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def _llama_tokenizer() -> Any:
    return _fast_tokenizer(
        _bpe(LLAMA_SPECIALS, None),
        LLAMA_TEMPLATE,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
    )


def _gemma_tokenizer() -> Any:
    return _fast_tokenizer(
        _bpe(GEMMA_SPECIALS, None),
        GEMMA_TEMPLATE,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


SMALL: dict[str, Any] = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}


def _model(kind: str, tokenizer: Any, qwen_ids: bool) -> Any:
    """A tiny random model of ``kind``: ``<Arch>ForCausalLM`` or a sequence classifier."""
    import torch
    import transformers

    arch, _, head = kind.partition("For")
    config_cls = getattr(transformers, f"{arch}Config")
    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    vocab = QWEN_VOCAB if qwen_ids and arch.startswith("Qwen") else len(tokenizer)
    extra: dict[str, Any] = {}
    if arch.startswith("Qwen3") or arch == "Gemma2":
        extra["head_dim"] = 4
    if arch == "Qwen3Moe":
        extra.update(
            num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16, decoder_sparse_step=1
        )
    if arch == "Gemma2":
        extra.update(tie_word_embeddings=True, query_pre_attn_scalar=4, sliding_window=64)
    if head == "SequenceClassification":
        extra["num_labels"] = 1
    config = config_cls(vocab_size=vocab, **SMALL, **ids, **extra)
    torch.manual_seed(0)
    model = getattr(transformers, f"{arch}For{head}")(config)
    return model.to(torch.float32)


MODELS: dict[str, tuple[str, Callable[[bool], Any]]] = {
    "trl-internal-testing/tiny-Qwen2ForCausalLM-2.5": (
        "Qwen2ForCausalLM",
        lambda q: _qwen_tokenizer(False, q),
    ),
    "trl-internal-testing/tiny-Qwen2ForSequenceClassification-2.5": (
        "Qwen2ForSequenceClassification",
        lambda q: _qwen_tokenizer(False, q),
    ),
    "trl-internal-testing/tiny-Qwen3ForCausalLM": (
        "Qwen3ForCausalLM",
        lambda q: _qwen_tokenizer(True, q),
    ),
    "trl-internal-testing/tiny-Qwen3ForSequenceClassification": (
        "Qwen3ForSequenceClassification",
        lambda q: _qwen_tokenizer(True, q),
    ),
    "trl-internal-testing/tiny-Qwen3MoeForCausalLM": (
        "Qwen3MoeForCausalLM",
        lambda q: _qwen_tokenizer(True, q),
    ),
    "trl-internal-testing/tiny-LlamaForSequenceClassification-3.2": (
        "LlamaForSequenceClassification",
        lambda q: _llama_tokenizer(),
    ),
    "trl-internal-testing/tiny-Gemma2ForCausalLM": (
        "Gemma2ForCausalLM",
        lambda q: _gemma_tokenizer(),
    ),
}
"""Model ids the upstream tests load that work on CPU without extras. Left out on purpose:
vision-language models (``tiny-*ForConditionalGeneration``, ``zen-image``),
``Qwen/Qwen2.5-0.5B-Instruct`` (vLLM), ``HuggingFaceTB/SmolVLM-Instruct`` and the
Llama/Mistral causal LMs of the GPU-only slow class."""


def _write_model(
    hub: Path, repo_id: str, kind: str, make_tokenizer: Callable[[bool], Any], qwen_ids: bool
) -> None:
    org, name = repo_id.split("/")
    root = hub / f"models--{org}--{name}"
    snap = root / "snapshots" / REVISION
    if snap.exists():
        shutil.rmtree(snap)
    snap.mkdir(parents=True)
    tokenizer = make_tokenizer(qwen_ids)
    model = _model(kind, tokenizer, qwen_ids)
    model.save_pretrained(snap)
    tokenizer.save_pretrained(snap)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(REVISION)


def _zen_rows(config: str, rows: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    conversational = config.startswith("conversational")
    out: list[dict[str, Any]] = []
    for prompt, completion, question in rows:
        if conversational:
            row: dict[str, Any] = {"prompt": [{"role": "user", "content": question}]}
            full = prompt + completion
            if config.endswith("prompt_completion"):
                row["completion"] = [{"role": "assistant", "content": full}]
            elif config.endswith("language_modeling"):
                row = {"messages": row["prompt"] + [{"role": "assistant", "content": full}]}
        else:
            row = {"prompt": prompt}
            if config.endswith("prompt_completion"):
                row["completion"] = completion
            elif config.endswith("language_modeling"):
                row = {"text": prompt + completion}
        out.append(row)
    return out


ZEN_CONFIGS = [
    "standard_prompt_only",
    "standard_prompt_completion",
    "standard_language_modeling",
    "conversational_prompt_only",
    "conversational_prompt_completion",
    "conversational_language_modeling",
]


def _write_datasets(root: Path) -> None:
    from datasets import Dataset

    for config in ZEN_CONFIGS:
        folder = root / "trl-internal-testing" / "zen" / config
        folder.mkdir(parents=True, exist_ok=True)
        for split, rows in (("train", ZEN[:N_TRAIN]), ("test", ZEN[N_TRAIN:])):
            Dataset.from_list(_zen_rows(config, rows)).to_parquet(str(folder / f"{split}.parquet"))


def build(cache: Path, qwen_ids: bool = False) -> None:
    """Write every model and dataset into ``cache`` (``hub/`` and ``datasets/``)."""
    for repo_id, (kind, make_tokenizer) in MODELS.items():
        _write_model(cache / "hub", repo_id, kind, make_tokenizer, qwen_ids)
    _write_datasets(cache / "datasets")


def ensure(cache: Path, qwen_ids: bool = False) -> bool:
    """Build ``cache`` unless it already holds this version; return whether it was (re)built."""
    stamp = cache / "VERSION"
    key = cache_key(qwen_ids)
    if stamp.exists() and stamp.read_text() == key:
        return False
    if cache.exists():
        shutil.rmtree(cache)
    cache.mkdir(parents=True)
    build(cache, qwen_ids)
    stamp.write_text(key)
    return True


if __name__ == "__main__":
    positional = [a for a in sys.argv[1:] if not a.startswith("--")]
    target = Path(positional[0] if positional else ".trl_upstream_cache").resolve()
    print(("built " if ensure(target, "--qwen-ids" in sys.argv) else "up to date: ") + str(target))
