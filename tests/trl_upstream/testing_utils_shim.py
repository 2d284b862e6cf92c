"""Stand-in for TRL's ``tests/testing_utils.py``, written from its public interface.

The stored upstream ``testing_utils.py`` predates the names ``test_grpo_trainer.py`` imports
(``TrlTestCase``, ``require_vision``, ...), so :mod:`run` copies this file over it as
``testing_utils.py`` in the upstream tests folder. Each ``require_*`` marks its test skipped,
with a reason, when the requirement is absent.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _ampere_or_newer() -> bool:
    return bool(torch.cuda.is_available() and torch.cuda.get_device_capability(0) >= (8, 0))


def _vision() -> bool:
    from transformers.utils import is_vision_available

    return bool(is_vision_available())


require_peft = pytest.mark.skipif(not _has("peft"), reason="test requires peft")
require_bitsandbytes = pytest.mark.skipif(
    not _has("bitsandbytes"), reason="test requires bitsandbytes"
)
require_jmespath = pytest.mark.skipif(not _has("jmespath"), reason="test requires jmespath")
require_kernels = pytest.mark.skipif(not _has("kernels"), reason="test requires kernels")
require_liger_kernel = pytest.mark.skipif(
    not _has("liger_kernel"), reason="test requires liger-kernel"
)
require_vllm = pytest.mark.skipif(not _has("vllm"), reason="test requires vllm")
require_vision = pytest.mark.skipif(not _vision(), reason="test requires vision")
require_torch_accelerator = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="test requires an accelerator"
)
require_ampere_or_newer = pytest.mark.skipif(
    not _ampere_or_newer(), reason="test requires Ampere or newer GPU"
)


class TrlTestCase:
    """Base class of TRL's pytest-style test classes: gives each test ``self.tmp_dir``."""

    tmp_dir: str

    @pytest.fixture(autouse=True)
    def set_tmp_dir(self, tmp_path: object) -> None:
        """Point ``self.tmp_dir`` at pytest's per-test temporary directory."""
        self.tmp_dir = str(tmp_path)
