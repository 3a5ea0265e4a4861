"""The zoo's captured bytes (fixtures/zoo, recorded by fixtures/capture.py) and what the zoo said it made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sockdiff.model import Process

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "zoo"
EXPECTED: list[dict[str, Any]] = json.loads((FIXTURES / "expected.json").read_text())
# The parsers attach whatever owners they are given by inode: each socket gets a
# marker naming its own inode, so a record with the wrong owners shows.
OWNERS = {r["inode"]: (Process(r["inode"], f"owner-of-{r['inode']}", 3),) for r in EXPECTED if r["inode"]}
