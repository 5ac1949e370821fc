"""The state file that lets ``mosu push`` resume: its key logic and its writes (no server needed)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from catalog.cli import resume

TARGET = {"package_id": "p1", "name": "big.csv"}


def _key(path: str = "/data/big.csv", size: int = 100, mtime_ns: int = 1, fp: str = "f",
         target: dict[str, str] = TARGET) -> resume.UploadKey:
    return resume.make_key("http://mosu.example/", target, Path(path), size, mtime_ns, fp)


def test_state_dir_prefers_mosu_then_xdg_then_home():
    home = Path("/home/u")
    assert resume.state_dir({"MOSU_STATE_DIR": "/s", "XDG_STATE_HOME": "/x"}, home) == Path("/s")
    assert resume.state_dir({"XDG_STATE_HOME": "/x"}, home) == Path("/x/mosu")
    assert resume.state_dir({"XDG_STATE_HOME": "relative"}, home) == home / ".local/state/mosu"
    assert resume.state_dir({}, home) == home / ".local/state/mosu"


def test_keys_are_canonical_and_change_with_the_file():
    assert _key() == resume.make_key("http://mosu.example", dict(reversed(TARGET.items())), Path("/data/big.csv"),
                                     100, 1, "f"), "trailing slash and target order do not matter"
    state = resume.remember({}, _key(), "u1", "2024-01-01T00:00:00+00:00")
    assert resume.find(state, _key()) == "u1"
    for changed in (_key(size=101), _key(mtime_ns=2), _key(fp="g"), _key(path="/data/other.csv"),
                    _key(target={"id": "r1"})):
        assert resume.find(state, changed) is None


def test_superseded_finds_the_same_place_with_another_file_only():
    state = resume.remember({}, _key(), "u1", "t")
    state = resume.remember(state, _key(path="/data/other.csv"), "u2", "t")
    state = resume.remember(state, _key(target={"id": "r1"}), "u3", "t")
    assert list(resume.superseded(state, _key(mtime_ns=5)).values()) == ["u1"]
    assert resume.superseded(state, _key()) == {}
    left = resume.forget(state, *resume.superseded(state, _key(mtime_ns=5)))
    assert resume.find(left, _key()) is None and resume.find(left, _key(path="/data/other.csv")) == "u2"


def test_a_damaged_file_counts_as_empty():
    for text in ("", "{", "[]", '{"format": 99, "uploads": {}}', '{"format": 1, "uploads": []}'):
        assert resume.parse(text) == {"format": 1, "uploads": {}}


def test_state_file_is_private_and_replaced_whole(tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(b"a" * (3 << 20))
    key = resume.file_key("http://mosu.example", TARGET, big)
    assert key.path == str(big.resolve()) and key.size == 3 << 20
    assert key.fingerprint == resume.file_key("http://mosu.example", TARGET, big).fingerprint
    with open(big, "r+b") as fh:  # same size and mtime, different last MiB: the fingerprint notices
        fh.seek((3 << 20) - 1)
        fh.write(b"b")
    os.utime(big, ns=(key.mtime_ns, key.mtime_ns))
    assert resume.file_key("http://mosu.example", TARGET, big) != key

    state = resume.UploadState(tmp_path / "state" / "mosu")
    state.put(key, "u1")
    assert state.get(key) == "u1"
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.directory.stat().st_mode) == 0o700
    state.drop_key(key)
    assert state.get(key) is None
    assert sorted(p.name for p in state.directory.iterdir()) == ["uploads.json", "uploads.json.lock"]
