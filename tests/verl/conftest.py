"""The verl adapter's tests run in their own virtual environment (.venv-verl): verl 0.9 pins
transformers < 5.11, TRL 1.16 needs a newer one. Shared fixtures come from the parent folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
