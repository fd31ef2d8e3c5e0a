"""`fcx node enroll users.csv`: the enterprise's own identifiers → tags, by blinded evaluation (用户登记).

The platform never sees an identifier: the node blinds ``"type:normalised value"`` with a fresh secret
scalar (``oprf.blind_batch``), sends only the blinded elements in batches of up to 1,000 to
``POST /v1/sharing/evaluate``, verifies the batch DLEQ proof against the OPRF public key published at
``/v1/sharing/keys`` (``oprf.finalize_batch``: a proof for another key is refused and nothing of the batch
is kept) and keeps ``(user_ref, HMAC(node secret, "type:value"), key id, tag)``.

At scale (#16: a million users within the enterprise's quota):

* **streamed**: the CSV is read row by row (:func:`iter_rows`, a generator) and enrolled in chunks of
  :data:`CHUNK` rows (:func:`chunks`); no more than one chunk is ever held in memory. A first pass over
  the file validates every row (a bad row is named by line and column, never by value) and counts them,
  so that nothing is sent for a file with a bad row and the progress bar knows its end;
* **within the quota**: a 429 is waited out as its ``Retry-After`` says (up to ``max_wait`` in all), then
  the same batch is sent again;
* **committed per chunk, resumable**: each chunk's tags are committed in one transaction together with a
  resume marker in the node's config (:data:`RESUME_KEY`: the file's fingerprint — a digest of its first
  block and its size —, the columns, the OPRF key id and the last committed row number). Run again on the
  same file, the enrolment skips the committed rows without reading their values and carries on after
  them; ``restart=True`` (``--restart``) starts from the first row. Identifiers already enrolled (another
  file, a restart) are found by their HMAC and never sent again.
"""

from __future__ import annotations

import csv
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from fanchaoxin.core import crypto
from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, normalise
from fanchaoxin.node.client import PlatformClient, PlatformRefused
from fanchaoxin.node.sdk import id_hmac_of
from fanchaoxin.node.store import Store, now
from fanchaoxin.sharing import oprf
from fanchaoxin.sharing.protocol import b64, unb64

log = logging.getLogger("fanchaoxin.node.enroll")

BATCH = 1000  # blinded elements in one evaluation request
CHUNK = 10_000  # rows read, evaluated and committed together
# Evaluation requests in flight at once: while the platform evaluates one batch the node blinds or
# unblinds the next (libsodium releases the GIL), so that neither side waits for the other.
IN_FLIGHT = 2
FIRST_BLOCK = 1 << 20  # bytes hashed for the file's fingerprint
RESUME_KEY = "enroll_resume"  # node config: where an interrupted enrolment of a file stopped
_LOOKUP = 500  # HMACs looked up in one query (below SQLite's limit on bound parameters)

T = TypeVar("T")
NumberedRow = tuple[int, str, str]  # (row number, user_ref, canonical "type:value"); row 1 is line 2


class EnrollError(ValueError):
    """Bad input (a row, a column, the type) or a refused evaluation; nothing of the failing chunk is kept."""


@dataclass
class EnrollResult:
    rows: int  # rows of the file (or given), resumed ones included
    distinct: int  # distinct identifiers within each chunk, summed
    already: int  # of them, already enrolled under the key
    enrolled: int  # newly enrolled in this run
    key_id: str
    batches: int  # evaluation requests
    waited_seconds: float
    chunks: int = 0  # chunks committed in this run
    resumed_after: int = 0  # rows skipped as committed by an interrupted run
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        done = self.rows - self.resumed_after
        return done / self.seconds if self.seconds > 0 else 0.0


# --- reading ----------------------------------------------------------------------------------------------


def _identifier_type(type_: str) -> IdentifierType:
    try:
        return IdentifierType(type_)
    except ValueError:
        raise EnrollError(f"--type: {type_!r} is not one of {', '.join(IdentifierType)}") from None


def iter_rows(
    path: Path, id_col: str, type_: str, value_col: str, *, start_after: int = 0
) -> Iterator[NumberedRow]:
    """``(row number, user_ref, canonical "type:value")`` for each row, read as it goes (a generator: one
    row in memory at a time). Rows up to ``start_after`` are skipped without looking at their values.
    Raises EnrollError naming the first bad row by line and column (never its value)."""
    t = _identifier_type(type_)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        for col, opt in ((id_col, "--id-col"), (value_col, "--value-col")):
            if col not in fields:
                raise EnrollError(f"{opt}: {path.name} has no column {col!r} (columns: {', '.join(fields)})")
        for n, row in enumerate(reader, start=1):
            if n <= start_after:
                continue
            line_no = reader.line_num
            ref = (row.get(id_col) or "").strip()
            if not ref:
                raise EnrollError(f"{path.name} line {line_no}, column {id_col}: empty user id")
            try:
                canonical = normalise(t, row.get(value_col) or "")
            except IdentifierError as exc:
                raise EnrollError(f"{path.name} line {line_no}, column {value_col}: {exc}") from None
            yield n, ref, f"{t.value}:{canonical}"


def read_rows(path: Path, id_col: str, type_: str, value_col: str) -> list[tuple[str, str]]:
    """``(user_ref, canonical "type:value")`` of every row, as a list: for small files (tests, the SDK);
    :func:`enroll_file` streams instead."""
    return [(ref, canonical) for _n, ref, canonical in iter_rows(path, id_col, type_, value_col)]


def check_file(path: Path, id_col: str, type_: str, value_col: str) -> int:
    """Validate every row (streamed); the number of rows. Raises EnrollError at the first bad row."""
    count = 0
    for count, _ref, _canonical in iter_rows(path, id_col, type_, value_col):  # noqa: B007
        pass
    return count


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to ``size`` consecutive items, taken from ``items`` one chunk at a time."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def file_fingerprint(path: Path) -> str:
    """A digest of the file's first block, and its size: the same file as the interrupted run's (a file
    that was appended to or rewritten is another). A local resume marker, not a security check: always
    the international digest, so a marker written before a profile change still resumes."""
    with path.open("rb") as fh:
        head = fh.read(FIRST_BLOCK)
    return f"{_MARKER_DIGEST.hexdigest(head)}:{path.stat().st_size}"


_MARKER_DIGEST = crypto.profile("international")


# --- evaluating -------------------------------------------------------------------------------------------


def _oprf_key(keys: dict[str, Any], key_id: str | None) -> tuple[str, bytes]:
    oprf_keys = keys.get("oprf") or []
    chosen = None
    for k in oprf_keys:
        if (key_id is None and k.get("current")) or (key_id is not None and k.get("key_id") == key_id):
            chosen = k
    if chosen is None:
        wanted = f"key id {key_id!r}" if key_id else "a current key"
        raise EnrollError(f"/v1/sharing/keys lists no OPRF {wanted}")
    return str(chosen["key_id"]), unb64(chosen["public_key"], "OPRF public key")


@dataclass
class _Run:
    """One enrolment run: the platform, the key, the node secret and the counts so far."""

    store: Store
    client: PlatformClient
    kid: str
    pk: bytes
    secret: bytes
    hmac_of: Callable[[bytes, str], bytes]  # id_hmac under the store's profile
    result: EnrollResult
    batch_size: int
    max_wait: float
    progress: Callable[[int], None] | None
    sleep: Callable[[float], None]
    lock: threading.Lock = field(default_factory=threading.Lock)  # the counts, from the batches' threads

    def _advance(self, n: int) -> None:
        if self.progress and n:
            with self.lock:
                self.progress(n)

    def _enrolled(self, hmacs: list[bytes]) -> set[bytes]:
        """Which of these HMACs are already enrolled under the key (looked up, never all loaded)."""
        have: set[bytes] = set()
        with self.store.read() as conn:
            for start in range(0, len(hmacs), _LOOKUP):
                part = hmacs[start : start + _LOOKUP]
                marks = ", ".join("?" * len(part))
                have.update(
                    bytes(h)
                    for (h,) in conn.exec_driver_sql(
                        f"SELECT id_hmac FROM node_users WHERE key_id = ? AND id_hmac IN ({marks})",
                        (self.kid, *part),
                    )
                )
        return have

    def _evaluate(self, blinded: list[bytes], batch_no: int) -> dict[str, Any]:
        """One evaluation request; a 429 is waited out as Retry-After says, then sent again."""
        result = self.result
        while True:
            try:
                return self.client.evaluate([b64(e) for e in blinded], self.kid)
            except PlatformRefused as exc:
                if exc.status != 429:
                    raise EnrollError(f"the platform refused batch {batch_no}: {exc}") from exc
                wait = exc.retry_after if exc.retry_after is not None else 60.0
                with self.lock:
                    over = result.waited_seconds + wait > self.max_wait
                    if not over:
                        result.waited_seconds += wait
                if over:
                    raise EnrollError(
                        f"quota reached (429); Retry-After {wait:.0f} s exceeds --max-wait; "
                        f"{result.enrolled} enrolled in this run are kept, run again to resume"
                    ) from exc
                log.warning("quota reached (429): waiting %.0f s as the platform asks (Retry-After)", wait)
                self.sleep(wait)

    def _tags(self, todo: list[tuple[bytes, str, str]], batch_no: int) -> list[str]:
        """The tags of one evaluation batch, verified against the key's proof."""
        inputs = [c.encode() for _h, _r, c in todo]
        blinds, blinded = oprf.blind_batch(inputs)
        answer = self._evaluate(blinded, batch_no)
        if answer.get("key_id") != self.kid:
            raise EnrollError(
                f"the platform answered with key {answer.get('key_id')!r}, asked for {self.kid!r}"
            )
        evaluated = [unb64(e, f"evaluated[{i}]") for i, e in enumerate(answer.get("evaluated") or [])]
        if len(evaluated) != len(blinded):
            raise EnrollError(
                f"the platform answered {len(evaluated)} evaluations for {len(blinded)} elements"
            )
        try:
            outputs = oprf.finalize_batch(
                inputs,
                blinds,
                evaluated,
                proof=unb64(answer.get("proof"), "proof"),
                pk=self.pk,
                blinded=blinded,
            )
        except (oprf.ProofError, oprf.InvalidElementError) as exc:
            log.error("refused evaluation batch %s: %s; nothing of it kept", batch_no, exc)
            raise EnrollError(f"the evaluation proof does not verify against key {self.kid}: {exc}") from None
        tags = [oprf.tag(self.kid, out) for out in outputs]
        self._advance(len(todo))
        return tags

    def chunk(self, rows: list[NumberedRow], marker: dict[str, Any] | None) -> None:
        """Evaluate one chunk's new identifiers and commit their tags with the resume marker (the chunk's
        last row): all of the chunk or nothing of it."""
        by_hmac: dict[bytes, tuple[str, str]] = {}
        for _n, ref, canonical in rows:
            by_hmac.setdefault(self.hmac_of(self.secret, canonical), (ref, canonical))
        have = self._enrolled(list(by_hmac))
        todo = [(h, ref, canonical) for h, (ref, canonical) in by_hmac.items() if h not in have]
        self._advance(len(rows) - len(todo))
        user_rows: list[tuple[bytes, str, str, str, str, float]] = []
        batches = [todo[start : start + self.batch_size] for start in range(0, len(todo), self.batch_size)]
        first_no = self.result.batches + 1
        with ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="fcx-enroll") as pool:
            # a failed batch raises here; the others finish, and nothing of the chunk is committed
            answers = pool.map(self._tags, batches, range(first_no, first_no + len(batches)))
            for batch, tags in zip(batches, answers, strict=True):
                at = now()
                user_rows += [
                    (h, self.kid, ref, canonical.partition(":")[0], tag, at)
                    for (h, ref, canonical), tag in zip(batch, tags, strict=True)
                ]
        self.result.batches += len(batches)
        with self.store.transaction() as conn:
            if user_rows:
                conn.exec_driver_sql(
                    "INSERT OR REPLACE INTO node_users(id_hmac, key_id, user_ref, id_type, tag, enrolled_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    user_rows,
                )
                self.store.set_config(conn, users_version=uuid.uuid4().hex)
            if marker is not None:
                self.store.set_config(conn, **{RESUME_KEY: json.dumps({**marker, "row": rows[-1][0]})})
        result = self.result
        result.distinct += len(by_hmac)
        result.already += len(by_hmac) - len(todo)
        result.enrolled += len(todo)
        result.chunks += 1


def _run(
    store: Store,
    numbered: Iterable[NumberedRow],
    *,
    client: PlatformClient | None,
    key_id: str | None,
    batch_size: int,
    chunk_size: int,
    max_wait: float,
    progress: Callable[[int], None] | None,
    sleep: Callable[[float], None],
    resume: Callable[[str], tuple[int, dict[str, Any] | None]] | None = None,
) -> EnrollResult:
    """Enrol the numbered rows chunk by chunk. ``resume(key id)`` gives the rows to skip and the marker
    to commit with each chunk (none for rows given in memory)."""
    started = time.monotonic()
    stored = store.get_config()
    secret = unb64(stored["node_secret"], "node secret")
    hmac_of = id_hmac_of(stored)
    own = client is None
    if client is None:
        cfg = store.get_config()
        client = PlatformClient(cfg["platform_url"], cfg["api_key"])
    try:
        kid, pk = _oprf_key(client.keys(), key_id)
        skip, marker = resume(kid) if resume else (0, None)
        result = EnrollResult(skip, 0, 0, 0, kid, 0, 0.0, resumed_after=skip)
        run = _Run(store, client, kid, pk, secret, hmac_of, result, batch_size, max_wait, progress, sleep)
        run._advance(skip)
        for rows in chunks(numbered, chunk_size):
            run.chunk(rows, marker)
            result.rows = rows[-1][0]
        result.seconds = time.monotonic() - started
        return result
    finally:
        if own:
            client.close()


# --- entry points -----------------------------------------------------------------------------------------


def enroll(
    store: Store,
    rows: Iterable[tuple[str, str]],
    *,
    client: PlatformClient | None = None,
    key_id: str | None = None,
    batch_size: int = BATCH,
    chunk_size: int = CHUNK,
    max_wait: float = 3600.0,
    progress: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> EnrollResult:
    """Enrol ``(user_ref, canonical "type:value")`` rows (any iterable, taken a chunk at a time).
    Identifiers already enrolled are skipped; no resume marker (:func:`enroll_file` keeps one)."""
    numbered = ((n, ref, canonical) for n, (ref, canonical) in enumerate(rows, start=1))
    return _run(
        store, numbered, client=client, key_id=key_id, batch_size=batch_size, chunk_size=chunk_size,
        max_wait=max_wait, progress=progress, sleep=sleep,
    )  # fmt: skip


def resume_marker(store: Store) -> dict[str, Any] | None:
    """Where the last interrupted enrolment stopped (file fingerprint, columns, key id, row), if any."""
    raw = store.get_config().get(RESUME_KEY)
    if not raw:
        return None
    try:
        marker = json.loads(raw)
    except ValueError:
        return None
    return marker if isinstance(marker, dict) else None


def clear_resume_marker(store: Store) -> None:
    with store.transaction() as conn:
        conn.exec_driver_sql("DELETE FROM node_config WHERE name = ?", (RESUME_KEY,))


def enroll_file(
    store: Store,
    path: Path,
    id_col: str,
    type_: str,
    value_col: str,
    *,
    restart: bool = False,
    client: PlatformClient | None = None,
    key_id: str | None = None,
    batch_size: int = BATCH,
    chunk_size: int = CHUNK,
    max_wait: float = 3600.0,
    progress: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_total: Callable[[int], None] | None = None,
) -> EnrollResult:
    """Enrol a CSV file, streamed, in chunks, resuming after the last chunk an interrupted run committed
    for the same file, columns and key (``restart``: from the first row). ``on_total(rows)`` is told the
    number of rows once the file is validated, before anything is sent."""
    total = check_file(path, id_col, type_, value_col)  # every row valid before anything is sent
    if on_total:
        on_total(total)
    if restart:
        clear_resume_marker(store)
    fingerprint = file_fingerprint(path)

    def resume(kid: str) -> tuple[int, dict[str, Any]]:
        marker = {"file": fingerprint, "id_col": id_col, "type": type_, "value_col": value_col, "key_id": kid}
        last = resume_marker(store)
        if last is not None and {k: last.get(k) for k in marker} == marker:
            row = last.get("row")
            if isinstance(row, int) and 0 < row <= total:
                log.info("resuming the enrolment of %s after row %d", path.name, row)
                return row, marker
        return 0, marker

    skip_box: list[int] = []

    def resume_and_remember(kid: str) -> tuple[int, dict[str, Any] | None]:
        skip, marker = resume(kid)
        skip_box.append(skip)
        return skip, marker

    def rows() -> Iterator[NumberedRow]:
        # the skip is known once the key is (inside _run, before the first row is taken)
        yield from iter_rows(path, id_col, type_, value_col, start_after=skip_box[0])

    result = _run(
        store, rows(), client=client, key_id=key_id, batch_size=batch_size, chunk_size=chunk_size,
        max_wait=max_wait, progress=progress, sleep=sleep, resume=resume_and_remember,
    )  # fmt: skip
    result.rows = total
    clear_resume_marker(store)  # the whole file is in: nothing to resume
    return result


def remove_users(store: Store, user_refs: Iterable[str]) -> int:
    refs = [(r,) for r in user_refs]
    with store.transaction() as conn:
        n = 0
        for ref in refs:
            n += conn.exec_driver_sql("DELETE FROM node_users WHERE user_ref = ?", ref).rowcount
        store.set_config(conn, users_version=uuid.uuid4().hex)
    return n
