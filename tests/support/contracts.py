"""Where the contract lives: `contracts/` in this repository (copied from the project's shared/ folder).

The repository carries its own copy of every schema and fixture it reads, so a plain clone with
nothing beside it runs the whole suite. `KEYRAIL_CONTRACTS_DIR` points the tests at another copy,
e.g. a newer shared/ being brought in.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = Path(os.environ.get("KEYRAIL_CONTRACTS_DIR") or REPO_ROOT / "contracts")
FIXTURES = CONTRACTS_DIR / "providers" / "fixtures"
