"""The SimBench cache returns exactly what SimBench returns, rebuilds broken entries and is keyed
by the library versions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tsodso.scenarios import cache
from tsodso.scenarios.cache import MappedProfile, cache_key, load_simbench
from tsodso.scenarios.world import profile_rows

CODE = "1-HVMV-mixed-all-2-sw"  # the default scenario's grid


class Spy:
    """Wraps the SimBench read: counts calls and keeps what it returned."""

    def __init__(self, read):
        self.read, self.calls, self.last = read, 0, None

    def __call__(self, code):
        self.calls += 1
        self.last = self.read(code)
        return self.last


def _tiny(code):
    from tsodso.scenarios.tiny import build_tiny

    return build_tiny()


def _assert_same_net(a, b):
    for name, table in a.items():
        if isinstance(table, pd.DataFrame):
            pd.testing.assert_frame_equal(table, b[name], check_exact=True)


def test_round_trip_equals_simbench(tmp_path, monkeypatch):
    spy = Spy(cache._read_simbench)
    monkeypatch.setattr(cache, "_read_simbench", spy)
    monkeypatch.setenv(cache.ENV, str(tmp_path))
    net, profiles = load_simbench(CODE)  # cold: converts
    assert spy.calls == 1
    ref_net, ref_profiles = spy.last
    _assert_same_net(ref_net, net)
    assert set(profiles) == set(ref_profiles)
    rng = np.random.default_rng(0)
    rows = np.r_[0, 35135, rng.integers(0, 35136, 50)]
    for key, ref in ref_profiles.items():
        got = profiles[key]
        assert isinstance(got, MappedProfile)
        assert got.shape == ref.shape
        assert list(got.columns) == list(ref.columns)
        if ref.shape[1]:
            cols = rng.choice(ref.columns, min(40, ref.shape[1]), replace=False)
            want = ref.reindex(columns=cols).to_numpy(dtype=float)[rows]
            assert np.array_equal(got.rows(rows, pd.Index(cols)), want)
            assert np.array_equal(profile_rows(got, rows[:3]), ref.to_numpy()[rows[:3]])
    del ref_net, ref_profiles, spy.last
    net2, profiles2 = load_simbench(CODE)  # warm: read from the cache
    assert spy.calls == 1
    _assert_same_net(net, net2)
    assert net2 is not net


def test_reindex_like_dataframe(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_read_simbench", _tiny)
    _, ref = _tiny("x")
    _, got = load_simbench("tiny-test", root=tmp_path)
    for key, df in ref.items():
        index = pd.Index([*df.columns[::-1], 9999])  # reordered, one element without a profile
        rows = np.array([3, 0, 5])
        assert np.array_equal(profile_rows(got[key], rows, index),
                              profile_rows(df, rows, index), equal_nan=True)


@pytest.mark.parametrize("damage", ["truncate_npy", "no_manifest", "bad_net", "bad_manifest"])
def test_broken_entry_is_rebuilt(tmp_path, monkeypatch, damage):
    spy = Spy(_tiny)
    monkeypatch.setattr(cache, "_read_simbench", spy)
    _, mapped = load_simbench("tiny-test", root=tmp_path)
    first = {k: p.rows(np.arange(p.shape[0])) for k, p in mapped.items()}  # before the damage
    del mapped
    entry = tmp_path / cache_key("tiny-test")
    assert (entry / "manifest.json").is_file() and spy.calls == 1
    if damage == "truncate_npy":
        f = entry / "load.p_mw.npy"
        f.write_bytes(f.read_bytes()[:-8])
    elif damage == "no_manifest":
        (entry / "manifest.json").unlink()
    elif damage == "bad_net":
        f = entry / "net.pkl"
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0xFF
        f.write_bytes(bytes(data))
    else:
        (entry / "manifest.json").write_text("{not json")
    net, again = load_simbench("tiny-test", root=tmp_path)
    assert spy.calls == 2  # rebuilt from the source
    for key, values in first.items():
        assert np.array_equal(again[key].rows(np.arange(len(values))), values)
    load_simbench("tiny-test", root=tmp_path)
    assert spy.calls == 2  # and trusted once whole again
    assert [p.name for p in tmp_path.iterdir()] == [entry.name]  # no temporary folders left


def test_key_changes_with_versions_and_code():
    base = {"simbench": "1.6.3", "pandapower": "3.5.6", "pandas": "2.2.3"}
    key = cache_key(CODE, base)
    assert cache_key(CODE, dict(base)) == key
    assert cache_key(CODE, {**base, "simbench": "1.6.4"}) != key
    assert cache_key(CODE, {**base, "pandapower": "3.6.0"}) != key
    assert cache_key(CODE, {**base, "pandas": "2.3.0"}) != key
    assert cache_key("1-HVMV-urban-all-2-sw", base) != key
    assert cache_key(CODE) == cache_key(CODE, cache.versions())


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(cache.ENV)
    assert cache.cache_dir().parts[-2:] == (".cache", "tsodso")


def test_stale_leftovers_are_swept(tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(cache, "_read_simbench", _tiny)
    old, fresh = tmp_path / ".tmp-x-old", tmp_path / ".tmp-x-fresh"
    for p in (old, fresh):
        p.mkdir()
        (p / "net.pkl").write_bytes(b"partial")
    os.utime(old, (0, 0))
    load_simbench("tiny-test", root=tmp_path)
    assert not old.exists() and fresh.exists()  # a recent one may belong to another process


def test_unwritable_cache_falls_back_to_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_read_simbench", _tiny)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    net, profiles = load_simbench("tiny-test", root=blocker / "cache")
    _, ref = _tiny("x")
    for key, df in ref.items():
        rows = np.arange(df.shape[0])
        assert np.array_equal(profile_rows(profiles[key], rows), profile_rows(df, rows))


def test_failed_write_falls_back_to_memory(tmp_path, monkeypatch):
    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache, "_read_simbench", _tiny)
    monkeypatch.setattr(cache, "_write_entry", full_disk)
    _, profiles = load_simbench("tiny-test", root=tmp_path)
    _, ref = _tiny("x")
    assert all(profiles[k].equals(df) for k, df in ref.items())
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone
