"""Enrolment at scale (#16, point 5): `fcx node enroll` streams the file in chunks, commits each chunk with
a resume marker, resumes after an interruption without evaluating committed rows again, waits out a 429,
and never holds the whole file in memory."""

from __future__ import annotations

import csv
import inspect
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.node import enroll as enroll_mod
from fanchaoxin.node.enroll import (
    RESUME_KEY,
    EnrollError,
    chunks,
    enroll,
    enroll_file,
    file_fingerprint,
    iter_rows,
    resume_marker,
)
from fanchaoxin.node.store import Store
from fanchaoxin.node.sync import initialise
from fanchaoxin.sharing import protocol as P
from tests.node.test_node_support import SIGNING, FakePlatform


@pytest.fixture
def fake() -> Iterator[FakePlatform]:
    f = FakePlatform()
    yield f
    f.close()


@pytest.fixture
def store_path(tmp_path: Path, fake: FakePlatform) -> str:
    path = str(tmp_path / "node.db")
    initialise(path, fake.url, "fcx_test_key", fingerprint=P.fingerprint(SIGNING.public))
    return path


def _phone(i: int) -> str:
    return f"138{i:08d}"


def _csv(tmp_path: Path, n: int, name: str = "users.csv", start: int = 0) -> Path:
    p = tmp_path / name
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "phone"])
        w.writerows((f"u{i}", _phone(i)) for i in range(start, start + n))
    return p


def _evaluated(fake: FakePlatform) -> int:
    """Blinded elements the platform was asked to evaluate so far."""
    return sum(
        len(json.loads(body)["blinded"])
        for method, path, body in fake.requests
        if method == "POST" and path == "/v1/sharing/evaluate"
    )


def _users(store_path: str) -> dict[str, str]:
    s = Store(store_path)
    try:
        with s.read() as c:
            return dict(c.exec_driver_sql("SELECT user_ref, tag FROM node_users").all())
    finally:
        s.dispose()


def test_a_file_is_enrolled_chunk_by_chunk(store_path: str, fake: FakePlatform, tmp_path: Path) -> None:
    path = _csv(tmp_path, 2500)
    advanced: list[int] = []
    totals: list[int] = []
    result = enroll_file(
        Store(store_path), path, "user_id", "phone", "phone", chunk_size=1000, batch_size=400,
        progress=advanced.append, on_total=totals.append,
    )  # fmt: skip
    assert (result.rows, result.enrolled, result.chunks) == (2500, 2500, 3)
    assert result.batches == 8  # chunks of 1000, 1000, 500 rows: batches of 400, 400, 200 | 400, 100
    assert totals == [2500] and sum(advanced) == 2500
    assert _evaluated(fake) == 2500
    users = _users(store_path)
    assert len(users) == 2500 and users["u7"] == fake.tag("phone", _phone(7))
    assert resume_marker(Store(store_path)) is None  # done: nothing to resume


def test_an_interrupted_enrolment_resumes_without_evaluating_committed_rows(
    store_path: str, fake: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _csv(tmp_path, 3500)
    real_chunk = enroll_mod._Run.chunk
    committed: list[int] = []

    def chunk_then_crash(self, rows, marker):  # type: ignore[no-untyped-def]
        real_chunk(self, rows, marker)
        committed.append(rows[-1][0])
        if len(committed) == 2:  # the process dies right after the second chunk is committed
            raise KeyboardInterrupt

    monkeypatch.setattr(enroll_mod._Run, "chunk", chunk_then_crash)
    with pytest.raises(KeyboardInterrupt):
        enroll_file(Store(store_path), path, "user_id", "phone", "phone", chunk_size=1000)
    monkeypatch.undo()
    assert committed == [1000, 2000]
    marker = resume_marker(Store(store_path))
    assert marker is not None and marker["row"] == 2000 and marker["file"] == file_fingerprint(path)
    assert len(_users(store_path)) == 2000 and _evaluated(fake) == 2000

    # run again: only the rows after the marker are read and evaluated
    result = enroll_file(Store(store_path), path, "user_id", "phone", "phone", chunk_size=1000)
    assert result.resumed_after == 2000 and result.enrolled == 1500 and result.chunks == 2
    assert result.already == 0  # committed rows were skipped by number, not even looked up
    assert _evaluated(fake) == 3500  # nothing evaluated twice
    users = _users(store_path)
    assert len(users) == 3500 and users["u3499"] == fake.tag("phone", _phone(3499))
    assert resume_marker(Store(store_path)) is None


def test_restart_and_a_changed_file_start_over_and_skip_enrolled_rows_cheaply(
    store_path: str, fake: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _csv(tmp_path, 1500)
    s = Store(store_path)
    enroll_file(s, path, "user_id", "phone", "phone", chunk_size=1000)
    # a stale marker for this file (as if interrupted after row 1000)
    marker = {"file": file_fingerprint(path), "id_col": "user_id", "type": "phone", "value_col": "phone",
              "key_id": "k1", "row": 1000}  # fmt: skip
    with s.transaction() as conn:
        s.set_config(conn, **{RESUME_KEY: json.dumps(marker)})
    before = _evaluated(fake)
    result = enroll_file(s, path, "user_id", "phone", "phone", chunk_size=1000, restart=True)
    assert result.resumed_after == 0 and result.already == 1500 and result.enrolled == 0
    assert _evaluated(fake) == before  # already enrolled: found by HMAC, never sent again
    # the file grew (another size: another file): it starts from the first row, new rows only evaluated
    with s.transaction() as conn:
        s.set_config(conn, **{RESUME_KEY: json.dumps(marker)})
    grown = _csv(tmp_path, 1600)
    result = enroll_file(s, grown, "user_id", "phone", "phone", chunk_size=1000)
    assert result.resumed_after == 0 and result.enrolled == 100 and _evaluated(fake) == before + 100


def test_the_reader_streams_and_the_enrolment_takes_one_chunk_at_a_time(
    store_path: str, fake: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _csv(tmp_path, 2500)
    rows = iter_rows(path, "user_id", "phone", "phone")
    assert inspect.isgenerator(rows)  # read as it goes, never a list of the file
    assert next(rows) == (1, "u0", "phone:+8613800000000")
    assert inspect.isgenerator(chunks(range(10), 3)) and list(chunks(range(7), 3)) == [
        [0, 1, 2], [3, 4, 5], [6]
    ]  # fmt: skip
    # how far the rows were taken when each evaluation request went out: never beyond the chunk being
    # evaluated (the rows of later chunks are not read yet)
    taken = 0

    def counted() -> Iterator[tuple[str, str]]:
        nonlocal taken
        for _n, ref, canonical in iter_rows(path, "user_id", "phone", "phone"):
            taken += 1
            yield ref, canonical

    seen: list[int] = []
    real_evaluate = enroll_mod.PlatformClient.evaluate

    def evaluate(self, blinded, key_id):  # type: ignore[no-untyped-def]
        seen.append(taken)
        return real_evaluate(self, blinded, key_id)

    monkeypatch.setattr(enroll_mod.PlatformClient, "evaluate", evaluate)
    result = enroll(Store(store_path), counted(), chunk_size=1000, batch_size=500)
    assert result.enrolled == 2500
    assert seen == [1000, 1000, 2000, 2000, 2500]


def test_a_bad_row_anywhere_stops_the_file_before_anything_is_sent(
    store_path: str, fake: FakePlatform, tmp_path: Path
) -> None:
    path = _csv(tmp_path, 2500)
    with path.open("a", newline="") as fh:
        csv.writer(fh).writerow(["u-bad", "12345"])
    with pytest.raises(EnrollError, match=r"users.csv line 2502, column phone") as exc:
        enroll_file(Store(store_path), path, "user_id", "phone", "phone", chunk_size=1000)
    assert "12345" not in str(exc.value)
    assert _evaluated(fake) == 0 and resume_marker(Store(store_path)) is None


def test_a_429_mid_file_is_waited_out_and_the_enrolment_continues(
    store_path: str, fake: FakePlatform, tmp_path: Path
) -> None:
    path = _csv(tmp_path, 1200)
    slept: list[float] = []
    real_evaluate = fake.ring.blind_evaluate
    calls = 0

    def quota_after_first(blinded, key_id):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 1:
            fake.quota_429 = 2  # the next two requests are refused with Retry-After: 7
        return real_evaluate(blinded, key_id)

    fake.ring.blind_evaluate = quota_after_first  # type: ignore[method-assign]
    result = enroll_file(
        Store(store_path), path, "user_id", "phone", "phone", chunk_size=1000, sleep=slept.append
    )
    assert slept == [7.0, 7.0] and result.enrolled == 1200 and result.waited_seconds == 14.0


def test_cli_enroll_progress_summary_and_resume(
    store_path: str, fake: FakePlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _csv(tmp_path, 1500)
    args = ["node", "enroll", str(path), "--id-col", "user_id", "--type", "phone", "--value-col", "phone",
            "--store", store_path, "--chunk-size", "1000"]  # fmt: skip
    real_chunk = enroll_mod._Run.chunk

    def chunk_then_stop(self, rows, marker):  # type: ignore[no-untyped-def]
        real_chunk(self, rows, marker)
        raise KeyboardInterrupt

    monkeypatch.setattr(enroll_mod._Run, "chunk", chunk_then_stop)
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1
    assert "rows up to 1000 are committed" in " ".join(r.output.split())
    monkeypatch.undo()
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "Enrolled 500 identifiers" in out and "resumed after row 1000" in out and "1500 rows" in out
