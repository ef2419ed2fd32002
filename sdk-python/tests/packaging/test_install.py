"""Installing the package as users do, into a fresh virtualenv: `pip
install ./sdk-python` from a read-only checkout (sdk-python/ and proto/
copied, then `chmod -R a-w`) writes nothing into it; an sdist carries the
proto, so it installs with no proto beside it; `pip install -e` generates
the stubs beside the sources. Needs pip's index (or its cache) for the
build requirements and dependencies."""

import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

SDK = Path(__file__).resolve().parents[2]
REPO = SDK.parent
JUNK = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")
CHECK = ("import lymph, lymph.client; from lymph._wire import pb; "
         "print(lymph.__file__); print(pb.Hello.DESCRIPTOR.full_name)")


def run(*args, cwd=None):
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("LYMPH_PROTO_DIR", None)
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, "%s failed (%s):\n%s\n%s" % (args, done.returncode, done.stdout, done.stderr)
    return done.stdout


def tree(root):
    """Every path under `root` with its kind, size and modification time."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            found[os.path.relpath(path, root)] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns)
    return found


def set_writable(root, writable):
    for directory, dirs, files in os.walk(root):
        for path in [directory] + [os.path.join(directory, f) for f in files]:
            mode = os.lstat(path).st_mode
            os.chmod(path, mode | stat.S_IWUSR if writable else mode & ~0o222)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh virtualenv's python (without the package)."""
    where = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", where)
    return where / "bin" / "python"


def copy_checkout(dest):
    shutil.copytree(SDK, dest / "sdk-python", ignore=JUNK)
    shutil.copytree(REPO / "proto", dest / "proto", ignore=JUNK)


def installed_from(venv, out):
    module, name = out.split()
    assert module.startswith(str(venv.parent.parent)), "lymph imported from %s, not the venv" % module
    assert name == "lymph.v1.Hello"


def test_pip_install_from_a_read_only_checkout(venv, tmp_path):
    copy_checkout(tmp_path)
    set_writable(tmp_path, False)
    try:
        before = tree(tmp_path)
        run(venv, "-m", "pip", "install", "--force-reinstall", tmp_path / "sdk-python", cwd=tmp_path)
        after = tree(tmp_path)
    finally:
        set_writable(tmp_path, True)
    assert sorted(set(after) - set(before)) == [], "the build wrote into the checkout"
    assert after == before
    installed_from(venv, run(venv, "-c", CHECK, cwd="/"))


def test_an_sdist_carries_the_proto(venv, tmp_path):
    copy_checkout(tmp_path / "checkout")
    run(sys.executable, "setup.py", "-q", "sdist", "-d", tmp_path / "dist", cwd=tmp_path / "checkout" / "sdk-python")
    [sdist] = (tmp_path / "dist").glob("lymph-sdk-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    assert any(n.endswith("/proto/lymph/v1/lymph.proto") for n in names), names
    # Installed from a directory with no proto anywhere near it.
    alone = tmp_path / "alone"
    alone.mkdir()
    moved = shutil.copy(sdist, alone)
    run(venv, "-m", "pip", "install", "--force-reinstall", "--no-deps", moved, cwd=alone)
    installed_from(venv, run(venv, "-c", CHECK, cwd="/"))


def test_an_editable_install_gets_the_stubs(venv, tmp_path):
    copy_checkout(tmp_path)
    run(venv, "-m", "pip", "install", "--force-reinstall", "--no-deps", "-e", tmp_path / "sdk-python", cwd=tmp_path)
    module, name = run(venv, "-c", CHECK, cwd="/").split()
    assert module == str(tmp_path / "sdk-python" / "lymph" / "__init__.py")
    assert name == "lymph.v1.Hello"
    assert (tmp_path / "sdk-python" / "lymph" / "v1" / "lymph_pb2.py").is_file()
