"""Pytest plugin that runs TRL's own GRPO tests offline, against TRL or ``SpardGRPOTrainer``.

Load it with ``-p spard_upstream_plugin`` (its folder on ``PYTHONPATH``). Environment:

* ``SPARD_TRL_CACHE``: the folder :mod:`offline_hub` built (``hub/`` and ``datasets/``);
* ``SPARD_TRL_MODE``: ``plain`` (TRL untouched, the default), or ``static`` / ``spard``:
  ``trl.GRPOTrainer`` becomes a subclass of ``SpardGRPOTrainer`` whose ``spard_strategy`` is
  that mode, each trainer with its own ``SpardClient.local()``.

``datasets.load_dataset`` serves the materialised datasets from local parquet files, and a
test that needs a hub model or dataset the cache lacks (vision models, vLLM's 0.5B model, ...)
is marked skipped with the missing id as reason.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
from pathlib import Path
from typing import Any

import pytest

MODES = ("plain", "static", "spard")
HUB_ID = re.compile(r"\b(?:trl-internal-testing|Qwen|HuggingFaceTB|meta-llama|google)/[\w.\-]+")
HARD_CODED_VOCAB = {
    "test_training_with_tools": (
        "hard-codes token ids of the real Qwen2.5 tokenizer, which cannot be built offline"
    ),
}
QWEN_IDS = {
    "test_training_with_mask_truncated_completions": (
        "hard-codes Qwen's ids 151643/151645: build the cache with --qwen-ids"
    ),
    "test_training_with_mask_truncated_completions_all_masked": (
        "needs EOS practically never sampled, as with a 152k vocabulary: build with --qwen-ids"
    ),
}


def _cache() -> Path:
    return Path(os.environ.get("SPARD_TRL_CACHE", ".trl_upstream_cache")).resolve()


def _available_ids(cache: Path) -> set[str]:
    ids: set[str] = set()
    hub = cache / "hub"
    if hub.is_dir():
        for entry in hub.iterdir():
            if entry.name.startswith("models--"):
                org, _, name = entry.name[len("models--") :].partition("--")
                ids.add(f"{org}/{name}")
    datasets = cache / "datasets"
    if datasets.is_dir():
        ids.update(f"{org.name}/{ds.name}" for org in datasets.iterdir() for ds in org.iterdir())
    return ids


def _patch_load_dataset(cache: Path) -> None:
    """Serve materialised datasets from parquet; anything else goes to the real loader."""
    import datasets

    original = datasets.load_dataset
    root = cache / "datasets"

    def load_dataset(
        path: str, name: str | None = None, *args: Any, split: str | None = None, **kwargs: Any
    ) -> Any:
        folder = root / path / (name or "")
        if isinstance(path, str) and name and folder.is_dir():
            files = {p.stem: str(p) for p in sorted(folder.glob("*.parquet"))}
            return original("parquet", data_files=files, split=split)
        return original(path, name, *args, split=split, **kwargs)

    datasets.load_dataset = load_dataset


def _stub_missing_imports() -> None:
    """Give ``trl.trainer.utils`` the names the stored test module imports but TRL lacks.

    The stored ``test_grpo_trainer.py`` imports ``get_kbit_device_map`` (newer TRL; used only by
    a GPU-only test): without a stand-in the whole module fails to import. The stand-in raises.
    """
    import trl.trainer.utils as trl_utils

    if not hasattr(trl_utils, "get_kbit_device_map"):

        def get_kbit_device_map() -> Any:
            raise NotImplementedError(
                "get_kbit_device_map is not in this TRL version (harness stand-in)"
            )

        trl_utils.get_kbit_device_map = get_kbit_device_map


def _bf16_default_off_without_accelerator() -> None:
    """Make TRL configs default to ``bf16=False`` where no device supports bf16 training.

    TRL's configs turn an unset ``bf16`` into ``True``, which ``TrainingArguments`` refuses on
    a CPU-only machine ("Your setup doesn't support bf16/gpu"); TRL's CI runs on GPUs. An
    explicit ``bf16`` is left as given.
    """
    from transformers.utils import is_torch_bf16_gpu_available
    from trl.trainer.base_config import _BaseConfig

    if is_torch_bf16_gpu_available():
        return
    original = _BaseConfig.__post_init__

    def post_init(self: Any) -> None:
        if self.bf16 is None:
            self.bf16 = False
        original(self)

    _BaseConfig.__post_init__ = post_init


def _install_trainer(mode: str) -> None:
    """Replace ``trl.GRPOTrainer`` by a ``SpardGRPOTrainer`` fixed to ``mode``."""
    import trl

    # Found under `make typecheck`'s installed tree, not from a checkout (package-dir mapping).
    from spard.trainer_adapters.trl import (  # type: ignore[import-not-found,unused-ignore]
        SpardGRPOTrainer,
    )

    class GRPOTrainer(SpardGRPOTrainer):  # type: ignore[misc,unused-ignore]
        """``SpardGRPOTrainer`` with ``spard_strategy`` fixed by ``SPARD_TRL_MODE``."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("spard_strategy", mode)
            super().__init__(*args, **kwargs)

    GRPOTrainer.__module__ = __name__
    trl.GRPOTrainer = GRPOTrainer


def pytest_configure(config: pytest.Config) -> None:
    """Patch the loaders (and the trainer, by mode) before the test module is imported."""
    mode = os.environ.get("SPARD_TRL_MODE", "plain")
    if mode not in MODES:
        raise pytest.UsageError(f"SPARD_TRL_MODE must be one of {MODES}, not {mode!r}")
    _patch_load_dataset(_cache())
    _stub_missing_imports()
    _bf16_default_off_without_accelerator()
    if mode != "plain":
        _install_trainer(mode)
    config.addinivalue_line("markers", "slow: TRL's slow tests")


def _ids_used(item: pytest.Item) -> set[str]:
    found: set[str] = set()
    function = getattr(item, "function", None)
    if function is not None:
        with contextlib.suppress(OSError, TypeError):
            source = inspect.getsource(function)
            # Decorators name every parameter's model: the callspec below names this item's.
            found.update(HUB_ID.findall(source[source.find("def ") :]))
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        for value in callspec.params.values():
            if isinstance(value, str):
                found.update(HUB_ID.findall(value))
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, with a reason, tests that need something this offline harness cannot provide."""
    available = _available_ids(_cache())
    stamp = _cache() / "VERSION"
    qwen_ids = stamp.exists() and stamp.read_text().endswith("-qwen-ids")
    for item in items:
        missing = sorted(_ids_used(item) - available)
        if missing:
            item.add_marker(
                pytest.mark.skip(reason=f"not materialised offline: {', '.join(missing)}")
            )
            continue
        name = getattr(item, "originalname", item.name)
        if name in HARD_CODED_VOCAB:
            item.add_marker(pytest.mark.skip(reason=HARD_CODED_VOCAB[name]))
        elif name in QWEN_IDS and not qwen_ids:
            item.add_marker(pytest.mark.skip(reason=QWEN_IDS[name]))


def pytest_report_header(config: pytest.Config) -> str:
    """Say which trainer the run tests."""
    return (
        f"spard upstream harness: mode={os.environ.get('SPARD_TRL_MODE', 'plain')} cache={_cache()}"
    )
