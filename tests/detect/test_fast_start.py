"""`fcx detect …` and `fcx simulate …` start without the platform and without the detectors' stack (#20).

Each check runs in a fresh interpreter: what a module imports is only visible before anything else has
imported it. No timings here (bench/ measures); what is checked is which modules load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from fanchaoxin.detect.cli import app as detect_app
from fanchaoxin.simulate.cli import app as simulate_app

HEAVY = ("fastapi", "sqlalchemy", "pydantic", "numpy", "duckdb", "httpx", "sklearn", "scipy", "pyarrow")
ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> str:
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def _loaded_after(code: str) -> dict[str, bool]:
    out = _python(
        f"import sys\n{code}\nimport json\n"
        f"print(json.dumps({{m: m in sys.modules for m in {[*HEAVY, 'fanchaoxin.cli']!r}}}))"
    )
    return json.loads(out.strip().splitlines()[-1])


def _fcx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fanchaoxin", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        # wide enough that no command name is cut; a pipe, so no colours
        env={k: v for k, v in os.environ.items() if k != "FORCE_COLOR"} | {"COLUMNS": "200"},
        check=False,
    )


def _names(app) -> list[str]:  # type: ignore[no-untyped-def]
    names = [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]
    return names + [g.name for g in app.registered_groups if g.name]


def test_the_command_groups_import_no_heavy_module():
    loaded = _loaded_after("import fanchaoxin.detect.cli, fanchaoxin.simulate.cli")
    assert [m for m, on in loaded.items() if on] == []


def test_detect_help_runs_without_the_platform_and_lists_every_command():
    code = (
        "from fanchaoxin.launch import main\n"
        "try:\n    main(['detect', '--help'])\nexcept SystemExit as exc:\n    assert not exc.code, exc.code"
    )
    loaded = _loaded_after(code)
    assert [m for m, on in loaded.items() if on] == []
    res = _fcx("detect", "--help")
    assert res.returncode == 0, res.stderr
    names = _names(detect_app)
    assert {"order-brushing", "dense-blocks", "lockstep", "registrations", "parcels", "reviews"} <= set(names)
    missing = [n for n in names if n not in res.stdout]
    assert missing == [], res.stdout
    assert "Usage: fcx detect" in res.stdout


def test_simulate_help_lists_every_command():
    res = _fcx("simulate", "--help")
    assert res.returncode == 0, res.stderr
    assert "marketplace" in _names(simulate_app)
    assert [n for n in _names(simulate_app) if n not in res.stdout] == [], res.stdout


def test_a_detect_command_runs_through_the_launcher(tmp_path: Path):
    edges = tmp_path / "e.csv"
    edges.write_text("a,b\n" + "".join(f"u{i},p{j}\n" for i in range(4) for j in range(3)), encoding="utf-8")
    out = tmp_path / "blocks.json"
    res = _fcx("detect", "dense-blocks", "-i", str(edges), "--src", "a", "--dst", "b", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert json.loads(out.read_text())[0]["src"] == ["u0", "u1", "u2", "u3"]
    res = _fcx(
        "detect", "dense-blocks", "-i", str(tmp_path / "missing.csv"), "--src", "a", "--dst", "b", "-o", "x"
    )
    assert res.returncode == 2 and "no such file" in res.stderr


def test_every_other_command_goes_to_the_whole_platform():
    res = _fcx("--help")
    assert res.returncode == 0, res.stderr
    for group in ("db", "org", "keys", "entries", "detect", "simulate", "node", "report", "console"):
        assert f" {group} " in res.stdout, group
    assert "Usage: fcx" in res.stdout


def test_the_console_script_is_the_launcher():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["fcx"] == "fanchaoxin.launch:main"
