"""Objective names: one normal form and one rule for the characters they may hold.

Names that look alike but differ in bytes (an accent composed or decomposed, a zero-width
space) would be two objectives to the engine and one to anyone reading the weights, so every
name is NFC-normalised where it enters (run creation, prior weights, SAW offsets, streamed
scores), and invisible or control characters are refused by one pattern that the API schema
publishes too.
"""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls, DEL, soft hyphen, zero-width and direction marks, line and paragraph
# separators, word joiners, BOM.
OBJECTIVE_NAME_PATTERN = (
    r"^[^\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]+$"
)
_ALLOWED = re.compile(OBJECTIVE_NAME_PATTERN)


def normal_name(name: str) -> str:
    """The NFC form under which an objective is known."""
    return unicodedata.normalize("NFC", name)


def is_allowed_name(name: str) -> bool:
    """Whether ``name`` is non-empty and free of invisible or control characters."""
    return _ALLOWED.match(name) is not None
