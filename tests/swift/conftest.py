"""The ms-swift adapter's tests run in their own virtual environment (.venv-swift): ms-swift 4.6
pins trl < 1.0 and transformers < 5.20, the trl extra needs newer ones. Shared fixtures come
from the parent folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
