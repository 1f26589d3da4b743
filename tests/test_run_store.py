"""Saved runs that outlive a reload: frame encoding, bounds, isolation, and every way the
database can fail (damaged file, unusable folder, failure mid-session)."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.runs import codec as run_codec
from dashboard.runs import sqlite as run_sqlite
from dashboard.runs.codec import decode_frame, encode_frame
from dashboard.runs.legacy import decode_glf1
from dashboard.runs.records import evictions, outcome_to_dict
from dashboard.runs.store import (
    FallbackRunStore,
    MemoryRunStore,
    RunStore,
    SQLiteRunStore,
    StoredRun,
    new_run_id,
    new_token,
    open_run_store,
    valid_token,
)
from gru_core.config import TrainConfig
from gru_core.run.records import EpochRecord, GateStats, Outcome, StepRecord
from gru_core.run.telemetry import Telemetry

A, B, C = new_token(), new_token(), new_token()


def _snapshot_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Real telemetry frames: gnorm:*, group:*, gate columns, text columns, NaN."""
    telemetry = Telemetry()
    gate = GateStats(0.5, (0.1, 0.3, 0.5, 0.7, 0.9), 0.01)
    for step in (1, 2, 3):
        telemetry.add_step(
            StepRecord(
                step=step, epoch=1, loss=math.inf if step == 3 else 2.0, perplexity=1e300,
                grad_norm=float("nan"), grad_norm_clipped=1.0, clipped=step == 2,
                clip_threshold=None, lr=1.0, param_grad_norms={"W_xz": 0.1, "b_q": 2.0},
                update_ratio=1e-3, gates={"Z": gate, "H_tilde": gate}, tokens=70,
            )
        )  # fmt: skip
    telemetry.add_epoch(EpochRecord(1, 3, 9.5, None, 100.0, "time traveller é🙂", "", 1.5))
    snap = telemetry.snapshot()
    return snap.steps, snap.epochs


def _run(name: str = "run", created: float = 1.0, pinned: bool = False) -> StoredRun:
    steps, epochs = _snapshot_frames()
    start = TrainConfig(hidden_size=16).to_dict()
    return StoredRun(
        run_id=new_run_id(), name=name, created=created, pinned=pinned,
        start_config=start, end_config={**start, "lr": 0.5}, corpus_name="filler.txt",
        outcome=outcome_to_dict(Outcome("stopped", 3, "stopped by you", 2.0, None), "ok"),
        steps=steps, epochs=epochs,
    )  # fmt: skip


def _names(store: RunStore, token: str) -> list[str]:
    return [r.name for r in store.list_runs(token)]


def _same(a: StoredRun, b: StoredRun) -> None:
    assert (a.run_id, a.name, a.created, a.pinned) == (b.run_id, b.name, b.created, b.pinned)
    assert (a.start_config, a.end_config, a.outcome) == (b.start_config, b.end_config, b.outcome)
    pd.testing.assert_frame_equal(a.steps, b.steps, check_exact=True)
    pd.testing.assert_frame_equal(a.epochs, b.epochs, check_exact=True)


# -- encoding ----------------------------------------------------------------------------
AWKWARD = pd.DataFrame(
    {
        "step": np.array([1, 2, 3], dtype=np.int64),
        "gnorm:W_xz": [np.nan, np.inf, -np.inf],
        "group:recurrent weights": [-0.0, 5e-324, 1.7976931348623157e308],
        "Z:p5": [1e300, 0.1 + 0.2, -1e-300],
        "clipped": [True, False, True],
        "greedy_text": pd.Series(["tïme", None, '🙂 "quoted" \\ \n'], dtype="str"),
        "kind": pd.Series(["a", None, "é"], dtype=object),
        "i32": np.array([-1, 0, 2**31 - 1], dtype=np.int32),
        "f32": np.array([np.nan, -np.inf, 1.5], dtype=np.float32),
    }
)


@pytest.mark.parametrize(
    "frame",
    [
        AWKWARD,
        _snapshot_frames()[0],
        _snapshot_frames()[1],
        Telemetry().snapshot().steps,  # empty, typed
        Telemetry().snapshot().epochs,
        pd.DataFrame(index=pd.RangeIndex(2)),  # rows, no columns
        AWKWARD.set_index(pd.RangeIndex(10, 16, 2)),  # a RangeIndex kept as metadata
        AWKWARD.set_index(pd.Index([7, 3, 5], name="row")),  # any other index as a column
    ],
    ids=[
        "awkward", "steps", "epochs", "empty-steps", "empty-epochs", "no-columns",
        "range-index", "index",
    ],
)  # fmt: skip
def test_frames_round_trip_exactly(frame: pd.DataFrame) -> None:
    blob = encode_frame(frame)
    assert blob.startswith(b"\xff\xff\xff\xff") and b"pickle" not in blob  # an Arrow IPC stream
    back = decode_frame(blob)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    for name in frame.columns:  # bit for bit: NaN, -0.0, subnormals; None stays None
        if frame[name].dtype.kind == "f":
            assert frame[name].to_numpy().tobytes() == back[name].to_numpy().tobytes()
        elif frame[name].dtype == object:
            assert back[name].tolist() == frame[name].tolist()


def test_any_arrow_reader_opens_a_stored_frame() -> None:
    """The bytes are a plain Arrow IPC stream: pyarrow alone (no pandas metadata) reads it."""
    import pyarrow as pa

    table = pa.ipc.open_stream(pa.py_buffer(encode_frame(AWKWARD))).read_all()
    assert table.column("step").to_pylist() == [1, 2, 3]
    assert table.schema.field("greedy_text").type in (pa.string(), pa.large_string())


def _glf(header: object, tail: bytes = b"") -> bytes:
    """Hand-made encode_frame bytes: a header (JSON, or raw bytes) and the number buffers."""
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    return zlib.compress(b"GLF1" + struct.pack("<I", len(head)) + head + tail)


def _one(column: list[object], tail: bytes = b"", rows: int = 1) -> bytes:
    return _glf({"rows": rows, "columns": [column]}, tail)


@pytest.mark.parametrize(
    "blob",
    [
        b"not zlib",
        zlib.compress(b"GLF"),
        zlib.compress(b"PK\x03\x04 a zip file"),
        _glf(b"\xff\xfe"),
        _glf(b"[" * 100_000),
        _glf([1, 2]),
        _glf({"rows": -1, "columns": []}),
        _glf({"rows": 0, "columns": []}, tail=b"extra"),
        _one(["a", "int64", None], tail=b"\x00" * 7),
        _one(["a", "float64", [1.0]], tail=b"\x00" * 8),
        _one(["a", "bool", None], tail=b"\x02"),
        _one(["a", "O", [None]]),
        _one(["a", "str", [1]]),
        _one(["a", "object", [{"nested": 1}]]),
        _one(["a", "object", ["x", "y"]]),
        _one([1, "object", ["x"]]),
    ],
)
def test_damaged_glf1_bytes_raise_value_error(blob: bytes) -> None:
    """Old rows (GLF1) go through the legacy decoder, which refuses damage as before."""
    with pytest.raises(ValueError, match="stored frame|stored column"):
        decode_glf1(blob)
    with pytest.raises(ValueError, match="stored frame|stored column"):
        decode_frame(blob)


def test_legacy_inflating_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard.runs import legacy

    blob = _one(["a", "float64", None], tail=b"\x00" * 8000, rows=1000)
    pd.testing.assert_frame_equal(decode_frame(blob), pd.DataFrame({"a": np.zeros(1000)}))
    monkeypatch.setattr(legacy, "MAX_FRAME_BYTES", 1000)
    with pytest.raises(ValueError, match="inflates beyond 1,000 bytes"):
        decode_frame(blob)


def _arrow_file(table: object) -> bytes:
    import pyarrow as pa

    assert isinstance(table, pa.Table)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_damaged_or_foreign_arrow_bytes_raise_value_error() -> None:
    import pyarrow as pa

    good = encode_frame(AWKWARD)
    for blob in (good[:40], good[:-20], b"ARROW1" + b"\x00" * 64, b"\xff" * 4 + b"\x00" * 64, 7):
        with pytest.raises(ValueError, match="stored frame"):
            decode_frame(blob)  # type: ignore[arg-type]
    # Types the codec never writes are refused before pandas sees them (a binary column
    # could hold a pickle; a timestamp is not a saved-run column).
    for column in (pa.array([b"\x80\x04K\x01."]), pa.array([1], pa.timestamp("s"))):
        with pytest.raises(ValueError, match="unstorable type"):
            decode_frame(_arrow_file(pa.table({"x": column})))


def test_an_arrow_ipc_file_decodes_too() -> None:
    """A frame written by another tool as an Arrow IPC file (``ARROW1``) reads back."""
    import pyarrow as pa

    frame = AWKWARD.drop(columns=["kind"])
    back = decode_frame(_arrow_file(pa.Table.from_pandas(frame)))
    pd.testing.assert_frame_equal(back, frame, check_exact=True)


def test_decoding_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = encode_frame(pd.DataFrame({"x": np.zeros(100_000)}))  # 800 kB of zeros, compressed
    monkeypatch.setattr(run_codec, "MAX_FRAME_BYTES", 20_000)
    assert len(blob) < 20_000
    with pytest.raises(ValueError, match="inflates beyond 20,000 bytes"):
        decode_frame(blob)
    with pytest.raises(ValueError, match="larger than 20,000 bytes"):
        decode_frame(blob + b"\x00" * 20_000)


def test_unstorable_frames_are_refused() -> None:
    with pytest.raises(ValueError, match="dtype"):
        encode_frame(pd.DataFrame({"t": pd.to_datetime(["2024-01-01"])}))
    with pytest.raises(ValueError, match="holds a list"):
        encode_frame(pd.DataFrame({"x": pd.Series([[1]], dtype=object)}))
    with pytest.raises(ValueError, match="holds a float"):  # Arrow keeps one type a column
        encode_frame(pd.DataFrame({"x": pd.Series(["a", 1.5], dtype=object)}))
    with pytest.raises(ValueError, match="names must be strings"):
        encode_frame(pd.DataFrame({1: [1.0]}))


def test_a_database_written_in_the_old_format_still_opens(tmp_path: Path) -> None:
    """``tests/data/runs_glf1.sqlite3`` was written by the GLF1 encoder before Arrow: its
    run reads back exactly, and saving it again (a pin) writes Arrow that reads back too."""
    from legacy_frames import LEGACY_RUN, LEGACY_TOKEN

    path = tmp_path / "old.sqlite3"
    path.write_bytes((Path(__file__).parent / "data" / "runs_glf1.sqlite3").read_bytes())
    with sqlite3.connect(path) as conn:
        (old,) = conn.execute("SELECT steps FROM runs").fetchone()
    assert bytes(old).startswith(b"x\x9c")  # the fixture really is the old format (zlib)
    store = SQLiteRunStore(path)
    (run,) = store.list_runs(LEGACY_TOKEN)
    _same(run, LEGACY_RUN)
    assert store.status_message is None
    store.save(LEGACY_TOKEN, dataclasses.replace(run, pinned=False))
    with sqlite3.connect(path) as conn:
        (new,) = conn.execute("SELECT steps FROM runs").fetchone()
    assert bytes(new).startswith(b"\xff\xff\xff\xff")  # saved again: Arrow
    _same(store.get(LEGACY_TOKEN, run.run_id), dataclasses.replace(LEGACY_RUN, pinned=False))


# -- tokens ------------------------------------------------------------------------------
BAD_TOKENS = ["", "short", "a" * 15, "a" * 129, "has spaces in it ok", "../../etc/passwd", None, 7]


def test_tokens_are_unguessable_and_checked() -> None:
    assert valid_token(new_token()) and new_token() != new_token()
    assert not any(valid_token(t) for t in BAD_TOKENS)


def test_eviction_rule() -> None:
    rows = [("a", True), ("b", False), ("c", True), ("d", False)]  # oldest first
    assert evictions(rows, 4, keep="d") == []
    assert evictions(rows, 2, keep="d") == ["b", "a"]  # unpinned first, then oldest pinned
    assert evictions(rows, 0, keep="d") == ["b", "a", "c"]  # the run being saved stays


# -- every store -------------------------------------------------------------------------
StoreFactory = Callable[..., RunStore]


@pytest.fixture(params=["memory", "sqlite", "fallback"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Each store, as the dashboard could get it; ``make_store(per_token=..., total=...)``."""
    path = tmp_path / "runs.sqlite3"
    if request.param == "memory":
        return lambda **bounds: MemoryRunStore(**bounds)
    if request.param == "sqlite":
        return lambda **bounds: SQLiteRunStore(path, **bounds)
    return lambda **bounds: FallbackRunStore(SQLiteRunStore(path, **bounds), **bounds)


def test_save_list_get_round_trip(make_store: StoreFactory) -> None:
    store, run = make_store(), _run("first", pinned=True)
    store.save(A, run)
    (listed,) = store.list_runs(A)
    _same(listed, run)
    _same(store.get(A, run.run_id), run)
    assert store.get(A, "no-such-run") is None and store.status_message is None


def test_tokens_are_isolated(make_store: StoreFactory) -> None:
    store, run = make_store(), _run("mine")
    store.save(A, run)
    assert store.list_runs(B) == [] and store.get(B, run.run_id) is None
    store.delete(B, run.run_id)
    store.set_pinned(B, run.run_id, True)
    store.save(B, dataclasses.replace(run, name="theirs"))  # same run_id, other token
    assert _names(store, A) == ["mine"] and _names(store, B) == ["theirs"]
    assert not store.get(A, run.run_id).pinned


@pytest.mark.parametrize("method", ["list_runs", "get", "delete", "save", "set_pinned"])
def test_invalid_tokens_are_rejected(make_store: StoreFactory, method: str) -> None:
    store = make_store()
    args = {"list_runs": (), "get": ("x",), "delete": ("x",), "save": (_run(),)}
    for token in BAD_TOKENS:
        with pytest.raises(ValueError, match="browser token"):
            getattr(store, method)(token, *args.get(method, ("x", True)))


def test_per_token_bound_evicts_oldest_unpinned(make_store: StoreFactory) -> None:
    store = make_store(per_token=3)
    runs = [_run(f"r{i}", created=float(i)) for i in range(6)]
    store.save(A, runs[0])
    store.set_pinned(A, runs[0].run_id, True)
    for run in runs[1:]:
        store.save(A, run)
    assert _names(store, A) == ["r0", "r4", "r5"]  # oldest first; the pinned r0 stays
    store.save(A, dataclasses.replace(runs[4], name="r4 renamed"))  # replace in place
    assert _names(store, A) == ["r0", "r4 renamed", "r5"]


def test_pins_leave_one_slot_for_the_next_run(make_store: StoreFactory) -> None:
    store = make_store(per_token=3)
    runs = [_run(f"r{i}", created=float(i)) for i in range(3)]
    for run in runs:
        store.save(A, run)
    store.set_pinned(A, runs[0].run_id, True)
    store.set_pinned(A, runs[1].run_id, True)
    with pytest.raises(ValueError, match="at most 2 saved runs can be pinned"):
        store.set_pinned(A, runs[2].run_id, True)
    with pytest.raises(ValueError, match="unpin one first"):
        store.save(A, _run("pinned", created=9.0, pinned=True))
    store.save(A, _run("next", created=9.0))
    assert _names(store, A) == ["r0", "r1", "next"]
    store.set_pinned(A, runs[0].run_id, False)
    store.delete(A, runs[1].run_id)
    assert [(r.name, r.pinned) for r in store.list_runs(A)] == [("r0", False), ("next", False)]


def test_total_bound_evicts_oldest_unpinned_of_any_token(make_store: StoreFactory) -> None:
    store = make_store(per_token=3, total=4)
    a0, b1, c2 = _run("a0", 0.0), _run("b1", 1.0), _run("c2", 2.0)
    for token, run in ((A, a0), (B, b1), (C, c2)):
        store.save(token, run)
        store.set_pinned(token, run.run_id, token == A)
    store.save(B, _run("b3", 3.0))
    store.save(C, _run("c4", 4.0))  # 5 > 4: b1 (oldest unpinned) goes, not the pinned a0
    assert (_names(store, A), _names(store, B), _names(store, C)) == (["a0"], ["b3"], ["c2", "c4"])


def test_concurrent_saves_lose_nothing(make_store: StoreFactory) -> None:
    store, errors = make_store(per_token=5, total=50), []
    tokens = [new_token() for _ in range(4)]

    def work(token: str) -> None:
        try:
            for i in range(5):
                store.save(token, _run(f"{i}", created=float(i)))
                store.list_runs(token)
        except Exception as err:  # collected: a thread's exception would vanish
            errors.append(err)

    threads = [threading.Thread(target=work, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(_names(store, t) == ["0", "1", "2", "3", "4"] for t in tokens)


# -- the SQLite file and its failures ----------------------------------------------------
def test_runs_survive_a_server_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRU_LAB_RUNS_DB")  # conftest points it at the test's own file
    monkeypatch.setenv("GRU_LAB_CACHE", str(tmp_path / "cache"))
    run = _run("kept")
    open_run_store().save(A, run)
    with sqlite3.connect(tmp_path / "cache" / "runs.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    again = open_run_store()  # a new process would build a new store the same way
    _same(again.get(A, run.run_id), again.list_runs(A)[0])
    _same(again.list_runs(A)[0], run)
    monkeypatch.setenv("GRU_LAB_RUNS_DB", str(tmp_path / "elsewhere" / "my.db"))
    assert open_run_store().list_runs(A) == [] and (tmp_path / "elsewhere" / "my.db").exists()


@pytest.mark.parametrize("kind", ["garbage", "foreign"])
def test_damaged_file_is_kept_as_backup_and_replaced(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "runs.sqlite3"
    if kind == "garbage":
        path.write_bytes(b"this is not a database" * 500)
    else:
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE notes (text TEXT)")
        conn.close()
    before = path.read_bytes()
    store = open_run_store(path)
    (backup,) = tmp_path.glob("runs.sqlite3.corrupt-*")
    assert backup.read_bytes() == before
    assert str(backup) in store.notice and "new, empty one" in store.notice
    assert store.status_message is None  # told once, at start: nothing is wrong now
    store.save(A, _run("fresh"))
    assert _names(open_run_store(path), A) == ["fresh"]


def test_newer_schema_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    SQLiteRunStore(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    conn.close()
    store = open_run_store(path)
    assert isinstance(store, MemoryRunStore) and "newer GRU Lab" in store.status_message
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_a_damaged_row_is_skipped_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    store = open_run_store(path)
    good, bad = _run("good", 1.0), _run("bad", 2.0)
    store.save(A, good)
    store.save(A, bad)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET steps = ? WHERE run_id = ?", (b"tampered", bad.run_id))
    conn.close()
    assert _names(store, A) == ["good"] and "could not be read" in store.status_message
    assert store.get(A, bad.run_id) is None


def test_unusable_location_gives_a_memory_store(tmp_path: Path) -> None:
    (tmp_path / "a file").write_text("not a folder")
    store = open_run_store(tmp_path / "a file" / "runs.sqlite3")
    assert isinstance(store, MemoryRunStore)
    assert "cannot be used" in store.status_message and "in memory" in store.status_message
    store.save(A, _run("still works"))
    assert _names(store, A) == ["still works"]


def test_failure_mid_session_keeps_listed_runs_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_run_store(tmp_path / "runs.sqlite3")
    assert isinstance(store, FallbackRunStore) and store.status_message is None
    store.save(A, _run("before", 1.0))
    store.list_runs(A)

    def broken(*args: object, **kwargs: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(run_sqlite.sqlite3, "connect", broken)
    store.save(A, _run("after", 2.0))
    assert store.degraded and "disk I/O error" in store.status_message
    assert "in memory" in store.status_message
    assert _names(store, A) == ["before", "after"]


def test_deleted_file_mid_session_is_not_silently_recreated(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    store = open_run_store(path)
    store.save(A, _run("before", 1.0))
    for file in tmp_path.glob("runs.sqlite3*"):
        file.unlink()
    assert _names(store, A) == ["before"] and store.degraded
    assert "Could not read" in store.status_message and not path.exists()


# -- issue 20: never silently in memory, never silently empty -------------------------------
def _on_disk(path: Path, token: str) -> list[str]:
    """The token's run names as a new process would read them from the file."""
    return _names(SQLiteRunStore(path), token)


def test_a_lock_held_by_another_program_delays_runs_but_they_reach_the_disk(
    tmp_path: Path,
) -> None:
    """Another connection holds the write lock past the busy timeout (0.2 s here for the
    default 10 s): the save is kept in memory and said so; once the lock is released, the
    next save writes both to the file, and the message goes away."""
    path = tmp_path / "runs.sqlite3"
    store = open_run_store(path, busy_timeout_s=0.2)
    store.save(A, _run("before", 1.0))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store.save(A, _run("while locked", 2.0))
        assert store.degraded and "locked by another program" in store.status_message
        assert "not reaching the disk" in store.status_message  # what the page shows
        assert _names(store, A) == ["before", "while locked"]  # this process still sees it
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _on_disk(path, A) == ["before"]  # nothing was written while it was locked
    store.save(A, _run("after", 3.0))
    assert _on_disk(path, A) == ["before", "while locked", "after"]
    assert not store.degraded and store.status_message is None


def test_a_pin_missed_by_a_failing_disk_is_replayed_in_order(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    store = open_run_store(path, busy_timeout_s=0.2)
    run = _run("kept", 1.0)
    store.save(A, run)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    store.set_pinned(A, run.run_id, True)
    store.delete(A, "no-such-run")
    holder.execute("ROLLBACK")
    holder.close()
    assert store.list_runs(A)[0].pinned  # the read replays the backlog first
    assert SQLiteRunStore(path).list_runs(A)[0].pinned and not store.degraded


def test_a_file_locked_at_start_is_opened_at_the_next_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.sqlite3"
    busy = [True]
    real = run_sqlite.SQLiteRunStore._open

    def locked_once(self: SQLiteRunStore) -> None:
        if busy.pop() if busy else False:
            raise run_sqlite.StoreBusyError(f"{path} stayed locked by another program")
        real(self)

    monkeypatch.setattr(run_sqlite.SQLiteRunStore, "_open", locked_once)
    store = open_run_store(path)
    assert isinstance(store, FallbackRunStore) and store.degraded
    assert "tried again" in store.status_message
    store.save(A, _run("first", 1.0))
    assert _on_disk(path, A) == ["first"] and store.status_message is None


def test_a_truncated_database_is_kept_as_a_backup_and_replaced(tmp_path: Path) -> None:
    """A file truncated to 0 bytes while the server ran: SQLite would open it as a new,
    empty database. At start it is kept aside, said so, and a new store works."""
    path = tmp_path / "runs.sqlite3"
    store = open_run_store(path)
    store.save(A, _run("lost", 1.0))
    for side in tmp_path.glob("runs.sqlite3-*"):  # a checkpointed file, as at a clean stop
        side.unlink()
    path.write_bytes(b"")
    again = open_run_store(path)  # the next start
    (backup,) = tmp_path.glob("runs.sqlite3.corrupt-*")
    assert backup.stat().st_size == 0
    assert again.notice is not None
    assert "empty (0 bytes)" in again.notice and str(backup) in again.notice
    assert again.status_message is None
    again.save(A, _run("fresh", 2.0))
    assert _on_disk(path, A) == ["fresh"]
