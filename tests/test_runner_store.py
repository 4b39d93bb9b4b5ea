"""The SQLite results store: exact round trip, resume keys, and refusing foreign files."""

from __future__ import annotations

import math
import sqlite3
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finetune_theory.runner.store import (
    APPLICATION_ID,
    ResultStore,
    StoreError,
    decode_records,
    encode_records,
)


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _same(a: object, b: object) -> bool:
    """Equal values of equal types; floats compared bit for bit (NaN, -0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return _bits(a) == _bits(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
)
keys = st.text(max_size=6).filter(lambda k: k != "$f64")  # the one reserved key
records_strategy = st.lists(st.dictionaries(keys, scalars, max_size=5), max_size=4)


@settings(max_examples=200, deadline=None)
@given(records_strategy)
def test_json_round_trip_is_bit_identical(records):
    assert _same(decode_records(encode_records(records)), records)


@settings(max_examples=100, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_float32_comes_back_as_the_same_value_in_float64(x):
    value = np.float32(x)
    back = decode_records(encode_records([{"x": value}]))[0]["x"]
    assert type(back) is float and _bits(back) == _bits(float(value))


@pytest.mark.parametrize("bits", ["fff8000000000000", "7ff8000000000001", "fff0000000000abc"])
def test_nans_with_a_sign_or_payload_keep_their_bits(bits):
    value = struct.unpack(">d", bytes.fromhex(bits))[0]
    back = decode_records(encode_records([{"x": value, "y": np.float64(value)}]))[0]
    assert struct.pack(">d", back["x"]).hex() == bits == struct.pack(">d", back["y"]).hex()


def test_the_negative_nan_of_inf_minus_inf_survives_the_store(tmp_path):
    with np.errstate(invalid="ignore"):
        value = np.float64(np.inf) - np.float64(np.inf)
    with ResultStore(tmp_path / "s.sqlite") as store:
        _put(store, 0, records=[{"x": value}])
        back = store.load("toy", "h", 0, "1")[0].records[0]["x"]
    assert _bits(back) == _bits(float(value))


def test_numpy_scalars_become_python_scalars_of_equal_value():
    rec = {"i": np.int64(-(2**62)), "b": np.bool_(True), "f": np.float64(0.1), "u": np.uint8(7)}
    back = decode_records(encode_records([rec]))[0]
    assert back == {"i": -(2**62), "b": True, "f": 0.1, "u": 7}
    assert type(back["i"]) is int and type(back["b"]) is bool and type(back["u"]) is int


@pytest.mark.parametrize(
    ("records", "match"),
    [
        ([{1: 2.0}], "non-string key"),
        ([[1.0, 2.0]], "not a dict"),
        ([{"x": object()}], "record field 'x'"),
        ([{"x": {"nested": 1}}], "record field 'x'"),
        ([{"$f64": 1.0}], "reserved key"),
    ],
)
def test_records_that_json_cannot_keep_are_refused(records, match):
    with pytest.raises(TypeError, match=match):
        encode_records(records)


TRICKY = [
    {"a": -0.0, "b": math.nan, "c": math.inf, "d": -math.inf, "e": 5e-324, "f": 0.1 + 0.2},
    {"a": 1.0, "b": 2, "c": True, "d": None, "e": "é ✓", "f": 1e308},
]


def _put(store, index, records=TRICKY, *, experiment="toy", chash="h", seed=0, version="1"):
    store.put(
        experiment,
        chash,
        index,
        seed,
        unit_hash=f"u{index}",
        unit_seed=100 + index,
        version=version,
        records=records,
        seconds=0.5,
    )


def test_units_survive_closing_and_reopening(tmp_path):
    path = tmp_path / "store.sqlite"
    with ResultStore(path) as store:
        for i in range(3):
            _put(store, i)
    with ResultStore(path) as store:
        loaded = store.load("toy", "h", 0, "1")
        assert sorted(loaded) == [0, 1, 2]
        assert all(_same(loaded[i].records, TRICKY) for i in range(3))
        assert loaded[2].unit_hash == "u2" and loaded[2].unit_seed == 102
        assert loaded[1].seconds == 0.5
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        app = sqlite3.connect(path).execute("PRAGMA application_id").fetchone()[0]
        assert app == APPLICATION_ID


def test_load_separates_config_seed_version_and_experiment(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as store:
        _put(store, 0)
        _put(store, 1, chash="other")
        _put(store, 2, seed=5)
        _put(store, 3, version="2")
        _put(store, 4, experiment="else")
        assert sorted(store.load("toy", "h", 0, "1")) == [0]
        assert sorted(store.load("toy", "other", 0, "1")) == [1]
        assert sorted(store.load("toy", "h", 5, "1")) == [2]
        assert sorted(store.load("toy", "h", 0, "2")) == [3]
        assert store.count() == 5 and store.count("toy") == 4
        assert store.clear("toy") == 4
        assert store.count() == 1 and store.load("toy", "h", 0, "1") == {}


def test_put_replaces_a_stale_row_with_the_same_key(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as store:
        _put(store, 0, records=[{"x": 1.0}])
        _put(store, 0, records=[{"x": 2.0}])
        assert store.count() == 1
        assert store.load("toy", "h", 0, "1")[0].records == [{"x": 2.0}]


def test_a_zero_byte_file_is_refused_like_any_other_file_that_is_not_a_store(tmp_path):
    empty, notes = tmp_path / "empty.sqlite", tmp_path / "notes.sqlite"
    empty.touch()
    notes.write_bytes(b"my notes\n")
    messages = []
    for path in (empty, notes):
        with pytest.raises(StoreError) as info:
            ResultStore(path)
        messages.append(str(info.value).replace(str(path), "PATH"))
        assert path.stat().st_size in (0, 9)  # left as it was
    assert messages[0] == messages[1]
    assert "not a finetune-theory results store" in messages[0]


def test_an_empty_sqlite_database_is_adopted(tmp_path):
    path = tmp_path / "s.sqlite"
    sqlite3.connect(path).execute("VACUUM").connection.close()  # a valid, empty database
    assert path.stat().st_size > 0
    with ResultStore(path) as store:
        _put(store, 0)
        assert store.count() == 1


def test_a_new_store_is_never_seen_half_made(tmp_path):
    path = tmp_path / "deep" / "s.sqlite"
    with ResultStore(path) as store:
        assert store.created
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.sqlite"]  # no temporary left
    with ResultStore(path) as store:
        assert not store.created and store.count() == 0


def test_a_row_without_a_checksum_is_damage_not_served(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as store:
        _put(store, 0, records=[{"x": 1.0}])
        _put(store, 1, records=[{"x": 2.0}])
    conn = sqlite3.connect(path)  # unit 1 now holds unit 0's records, with no checksum
    conn.execute(
        "UPDATE units SET records = (SELECT records FROM units WHERE unit_index = 0), "
        "checksum = '' WHERE unit_index = 1"
    )
    conn.commit()
    conn.close()
    with ResultStore(path) as store:
        rows = {row.unit_index: row for row in store.rows("toy", "h", 0)}
        assert rows[1].unit is None and rows[1].damage == "it has no checksum"
        assert sorted(store.load("toy", "h", 0, "1")) == [0]


def test_put_refuses_a_unit_computed_by_other_code(tmp_path):
    from finetune_theory.runner.errors import ForeignCode

    with ResultStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(ForeignCode, match="other code"):
            store.put(
                "toy", "h", 0, 0, unit_hash="u", unit_seed=1, version="1", records=[],
                seconds=0.0, fingerprint="aaaa", run_fingerprint="bbbb",
            )  # fmt: skip
        assert store.count() == 0
        store.put(
            "toy", "h", 0, 0, unit_hash="u", unit_seed=1, version="1", records=[],
            seconds=0.0, fingerprint="bbbb", run_fingerprint="bbbb",
        )  # fmt: skip
        assert store.load("toy", "h", 0, "1", fingerprint="bbbb")[0].fingerprint == "bbbb"


def test_a_reader_that_holds_off_the_checkpoint_is_counted(tmp_path):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as store:
        _put(store, 0)
        assert store.unfolded == 0
        reader = sqlite3.connect(path)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM units").fetchone()  # a read snapshot held open
        _put(store, 1)
        assert store.unfolded == 1
        reader.close()
        _put(store, 2)
        assert store.unfolded == 0  # folded in full again


def _unchanged_after_refusal(path, match):
    before = path.read_bytes()
    with pytest.raises(StoreError, match=match) as info:
        ResultStore(path)
    assert path.read_bytes() == before
    assert "\n" not in str(info.value)


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "store.sqlite"
    path.write_bytes(b"these are my notes, not a database\n" * 50)
    _unchanged_after_refusal(path, "not an SQLite file")


def test_a_foreign_sqlite_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "store.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (name TEXT)")
    conn.execute("INSERT INTO customers VALUES ('ada')")
    conn.commit()
    conn.close()
    _unchanged_after_refusal(path, "another program")


def test_a_corrupted_store_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "store.sqlite"
    big = [{"k": "x" * 200, "v": float(i)} for i in range(200)]
    with ResultStore(path) as store:
        for i in range(10):
            _put(store, i, records=big)
    size = path.stat().st_size
    assert size > 8 * 4096
    with path.open("r+b") as fh:  # scribble over pages in the middle of the file
        fh.seek(size // 2)
        fh.write(b"\xff\x00garbage" * 600)
    _unchanged_after_refusal(path, "corrupted")


def test_a_folder_is_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="is a folder"):
        ResultStore(tmp_path)


def test_a_closed_store_says_so(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count()


def test_a_layout_1_store_is_upgraded_and_its_units_are_kept_but_not_reused(tmp_path):
    path = tmp_path / "store.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE units (experiment TEXT NOT NULL, config_hash TEXT NOT NULL, "
        "unit_index INTEGER NOT NULL, seed INTEGER NOT NULL, unit_hash TEXT NOT NULL, "
        "unit_seed INTEGER NOT NULL, version TEXT NOT NULL, records TEXT NOT NULL, "
        "seconds REAL NOT NULL, created REAL NOT NULL, "
        "PRIMARY KEY (experiment, config_hash, unit_index, seed))"
    )
    conn.execute("INSERT INTO units VALUES ('toy', 'h', 0, 0, 'u0', 100, '1', '[]', 0.5, 0.0)")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with ResultStore(path) as store:
        rows = store.rows("toy", "h", 0)  # kept, but a row without checksum is never served
        assert [(r.unit_index, r.damage) for r in rows] == [(0, "it has no checksum")]
        _put(store, 1)
    with ResultStore(path) as store:
        assert sorted(store.load("toy", "h", 0, "1")) == [1]
    identity = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert identity >= 2  # the store got its own identity


def test_every_commit_carries_the_store_identity_into_the_wal(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ResultStore(path)
    store._checkpoint = lambda: None  # keep the WAL as a kill would
    try:
        for i in range(3):
            _put(store, i, records=[{"x": float(i)}])
        frames, page_one, _ = store._wal_page_one()
        assert frames and page_one is not None
        header = path.read_bytes()[:100]
        assert page_one[60:64] == header[60:64] and page_one[68:72] == header[68:72]
        assert struct.unpack(">I", header[60:64])[0] >= 2
    finally:
        store.close()
