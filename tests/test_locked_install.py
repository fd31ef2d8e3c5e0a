"""Reproducible installs (#23): the suite runs on exactly the versions of the lock file, and the lock files
answer for every requirement of pyproject.toml.

`make test` installs `requirements/test.lock` with `pip --require-hashes --no-deps`; these tests fail
when a package in this environment is not the locked one (an install by hand, a lock not re-made after a
change to pyproject.toml), and when a requirement has no pin that satisfies it.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)\s*(?:;\s*(?P<marker>[^\\]+?))?\s*\\?$"
)


def _pins(lock: str) -> dict[str, tuple[str, str | None, int]]:
    """name → (version, marker, number of hashes) of one lock file."""
    pins: dict[str, tuple[str, str | None, int]] = {}
    current: str | None = None
    for line in (ROOT / "requirements" / lock).read_text().splitlines():
        m = _PIN.match(line)
        if m:
            current = canonicalize_name(m["name"])
            assert current not in pins or m["marker"], f"{lock}: {current} pinned twice"
            pins[current] = (m["version"], m["marker"], 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, marker, hashes = pins[current]
            pins[current] = (version, marker, hashes + 1)
        elif line and not line.startswith((" ", "#")):
            raise AssertionError(f"{lock}: a line that is not a pin: {line!r}")
    return pins


def _requirements() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = {"run": [Requirement(r) for r in project["dependencies"]]}
    out["test"] = out["run"] + [
        Requirement(r) for extra in project["optional-dependencies"].values() for r in extra
    ]
    return out


@pytest.mark.parametrize("lock", ["run.lock", "test.lock"])
def test_every_pin_carries_hashes(lock: str) -> None:
    pins = _pins(lock)
    assert pins, f"{lock} pins nothing"
    assert not [name for name, (_, _, hashes) in pins.items() if hashes == 0]


@pytest.mark.parametrize("kind", ["run", "test"])
def test_the_lock_satisfies_every_requirement_of_pyproject(kind: str) -> None:
    pins = _pins(f"{kind}.lock")
    unmet = []
    for req in _requirements()[kind]:
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        pin = pins.get(canonicalize_name(req.name))
        if pin is None or not req.specifier.contains(pin[0], prereleases=True):
            unmet.append(f"{req} (locked: {pin[0] if pin else 'nothing'})")
    assert not unmet, f"re-make the lock (`make lock`): {unmet}"


def test_run_and_test_locks_agree() -> None:
    run, test = _pins("run.lock"), _pins("test.lock")
    assert not {n: (v, test.get(n, ("-",))[0]) for n, (v, _, _) in run.items() if test.get(n, ("",))[0] != v}


def test_this_environment_is_the_locked_one() -> None:
    """What runs the tests is what the lock says, package by package (an extra tool such as uv, which
    `make lock` installs, is not a locked package and is left alone)."""
    wrong = []
    for name, (version, marker, _) in _pins("test.lock").items():
        if marker and not Marker(marker).evaluate():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name}: missing, locked {version}")
            continue
        if installed != version:
            wrong.append(f"{name}: {installed}, locked {version}")
    assert not wrong, (
        f"install with `make install-test` (pip --require-hashes -r requirements/test.lock): {wrong}"
    )
