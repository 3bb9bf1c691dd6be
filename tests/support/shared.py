"""Where the contract lives: ../shared beside the repository (as CI lays it), or $KEYRAIL_SHARED_DIR."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DIR = Path(
    os.environ.get("KEYRAIL_SHARED_DIR") or Path(__file__).resolve().parents[2].parent / "shared"
)
FIXTURES = SHARED_DIR / "providers" / "fixtures"
