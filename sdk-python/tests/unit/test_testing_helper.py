"""How lymph.testing finds lymphd, and what it says when it cannot."""

import os

import pytest

from lymph.testing import find_lymphd, wait_for


def test_lymphd_bin_wins(tmp_path, monkeypatch):
    binary = tmp_path / "my-lymphd"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("LYMPHD_BIN", str(binary))
    assert find_lymphd() == str(binary)


def test_bin_dir_next(tmp_path, monkeypatch):
    (tmp_path / "lymphd").write_text("#!/bin/sh\n")
    (tmp_path / "lymphd").chmod(0o755)
    monkeypatch.delenv("LYMPHD_BIN", raising=False)
    monkeypatch.setenv("LYMPH_BIN_DIR", str(tmp_path))
    assert find_lymphd() == os.path.join(str(tmp_path), "lymphd")


def test_none_found_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("LYMPHD_BIN", str(tmp_path / "missing"))
    monkeypatch.setenv("LYMPH_BIN_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError) as e:
        find_lymphd()
    for place in ("$LYMPHD_BIN", "$LYMPH_BIN_DIR/lymphd", "lymphd on PATH", "target/debug/lymphd"):
        assert place in str(e.value)


def test_wait_for_is_bounded():
    assert wait_for(lambda: 5, 1) == 5
    with pytest.raises(AssertionError, match="never"):
        wait_for(lambda: False, 0.1, message="never")
