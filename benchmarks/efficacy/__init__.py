"""The efficacy benchmark: a real (tiny) GRPO loop on a multi-objective task family, on CPU.

Not part of the installed package (it needs torch, which spard does not depend on): run it
from a clone, ``python -m benchmarks.efficacy`` (``pip install -e '.[bench]'`` first).
"""
