"""The efficacy benchmark: a real (tiny) GRPO loop on a multi-objective task family, on CPU.

Installed as ``spard.efficacy``; run with ``spard bench``.
"""
