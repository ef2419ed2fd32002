"""How lymph.testing finds lymphd ($LYMPHD_BIN, $LYMPH_BIN_DIR, the newer of
the checkout's target/release and target/debug, PATH), and what it says when
it cannot."""

import os

import pytest

from lymph.testing import find_lymphd, wait_for


def executable(path, mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No $LYMPHD_BIN or $LYMPH_BIN_DIR, an empty PATH, cwd in an empty dir."""
    monkeypatch.delenv("LYMPHD_BIN", raising=False)
    monkeypatch.delenv("LYMPH_BIN_DIR", raising=False)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    monkeypatch.chdir(nowhere)
    return tmp_path


def test_lymphd_bin_wins(clean_env, monkeypatch):
    binary = executable(clean_env / "my-lymphd")
    executable(clean_env / "bin" / "lymphd")
    monkeypatch.setenv("LYMPH_BIN_DIR", str(clean_env / "bin"))
    monkeypatch.setenv("LYMPHD_BIN", str(binary))
    assert find_lymphd() == str(binary)


def test_a_wrong_lymphd_bin_is_an_error_not_skipped(clean_env, monkeypatch):
    executable(clean_env / "bin" / "lymphd")
    monkeypatch.setenv("LYMPH_BIN_DIR", str(clean_env / "bin"))
    monkeypatch.setenv("LYMPHD_BIN", str(clean_env / "typo"))
    with pytest.raises(RuntimeError, match=r"\$LYMPHD_BIN=.*typo is not an executable file"):
        find_lymphd()


def test_bin_dir_next(clean_env, monkeypatch):
    executable(clean_env / "bin" / "lymphd")
    monkeypatch.setenv("LYMPH_BIN_DIR", str(clean_env / "bin"))
    assert find_lymphd() == os.path.join(str(clean_env / "bin"), "lymphd")


@pytest.mark.parametrize("newer", ["release", "debug"])
def test_the_newer_checkout_build_from_any_subdirectory(clean_env, monkeypatch, newer):
    repo = clean_env / "repo"
    older = "debug" if newer == "release" else "release"
    executable(repo / "target" / older / "lymphd", mtime=1_000_000)
    expected = executable(repo / "target" / newer / "lymphd", mtime=2_000_000)
    executable(clean_env / "empty-path" / "lymphd")  # a checkout's build beats PATH
    deep = repo / "sdk-python" / "tests"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_lymphd() == str(expected)


def test_a_release_build_alone_is_found(clean_env, monkeypatch):
    repo = clean_env / "repo"
    expected = executable(repo / "target" / "release" / "lymphd")
    monkeypatch.chdir(repo)
    assert find_lymphd() == str(expected)


def test_path_last(clean_env):
    on_path = executable(clean_env / "empty-path" / "lymphd")
    assert find_lymphd() == str(on_path)


def test_none_found_names_every_place(clean_env):
    with pytest.raises(RuntimeError) as e:
        find_lymphd()
    text = str(e.value)
    for place in ("$LYMPHD_BIN", "$LYMPH_BIN_DIR/lymphd", "target/release/lymphd", "target/debug/lymphd",
                  str(clean_env / "nowhere"), "lymphd on PATH (%s)" % (clean_env / "empty-path"),
                  "LYMPHD_BIN to its path", "cargo build"):
        assert place in text, text


def test_wait_for_is_bounded():
    assert wait_for(lambda: 5, 1) == 5
    with pytest.raises(AssertionError, match="never"):
        wait_for(lambda: False, 0.1, message="never")
