"""SPARD: a self-paced reward curriculum (PAWA reward weights + RADR data weights) for GRPO.

>>> import spard
>>> state = spard.init(["correctness", "fluency"], spard.SpardConfig())
>>> result, state = spard.step(state, scores)  # scores: (N, G, K)
"""

from spard._version import __version__
from spard.config import STRATEGIES, SpardConfig
from spard.engine import StepResult, init, step
from spard.errors import InputError, SpardError, StepConflictError, StepOrderError
from spard.state import SCHEMA_VERSION, State

__all__ = [
    "SCHEMA_VERSION",
    "STRATEGIES",
    "InputError",
    "SpardConfig",
    "SpardError",
    "State",
    "StepConflictError",
    "StepOrderError",
    "StepResult",
    "__version__",
    "init",
    "step",
]
