"""The node is a client of the platform (issue "One house with one direction"): importing its HTTP app loads
none of the platform's slices, ORM models or decision index, only core, the pure decision kernel and the
wire formats. import-linter checks the import graph; this checks what a real import actually loads."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = (
    "fanchaoxin.blacklist",
    "fanchaoxin.orgs",
    "fanchaoxin.subjects",
    "fanchaoxin.appeals",
    "fanchaoxin.console",
    "fanchaoxin.workflows",
    "fanchaoxin.stats",
    "fanchaoxin.sanctions.service",
    "fanchaoxin.sanctions.index",
    "fanchaoxin.sanctions.models",
    "fanchaoxin.sanctions.views",
)

# A fresh interpreter: this test process has long since imported the whole platform.
PROBE = """
import json, sys
import fanchaoxin.node.app
print(json.dumps(sorted(m for m in sys.modules if m.startswith("fanchaoxin."))))
"""


def test_the_node_app_loads_no_platform_slice() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "fanchaoxin.node.app" in loaded
    offenders = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert not offenders, f"importing fanchaoxin.node.app loaded platform modules: {offenders}"
