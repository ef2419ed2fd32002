"""The package's build: generates the gRPC stubs of lymph/v1/lymph.proto
into the built package (lymph/v1/) with grpcio-tools, so that
`pip install ./sdk-python` needs no protoc and the generated files are never
committed (the stubs' own `from lymph.v1 import lymph_pb2` resolves inside
this package). It writes nothing into the source tree (but lymph/v1/ for
`pip install -e`): setuptools' build/ and *.egg-info go to a temporary
directory, so a read-only checkout installs.

The proto is taken from $LYMPH_PROTO_DIR, else proto/ here (an sdist carries
its copy there), else ../proto (the lymphd repository's)."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
PROTO = Path("lymph") / "v1" / "lymph.proto"


def proto_dir():
    """The directory holding lymph/v1/lymph.proto; exits naming every place looked at."""
    places = []
    if os.environ.get("LYMPH_PROTO_DIR"):
        places.append(Path(os.environ["LYMPH_PROTO_DIR"]))
    places += [HERE / "proto", HERE.parent / "proto"]
    for place in places:
        if (place / PROTO).is_file():
            return place
    raise SystemExit(
        "cannot build lymph-sdk: no %s in %s (build from the lymphd repository, whose proto/ is beside "
        "sdk-python/, or set LYMPH_PROTO_DIR)" % (PROTO, ", ".join(str(p) for p in places)))


def generate(out_dir):
    from grpc_tools import protoc  # a build requirement (pyproject.toml)
    import grpc_tools

    source_dir = proto_dir()
    target = Path(out_dir) / "lymph" / "v1"
    target.mkdir(parents=True, exist_ok=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    status = protoc.main([
        "grpc_tools.protoc",
        "-I%s" % source_dir,
        "-I%s" % well_known,
        "--python_out=%s" % out_dir,
        "--grpc_python_out=%s" % out_dir,
        str(PROTO),
    ])
    if status != 0:
        raise SystemExit("grpc_tools.protoc failed on %s (exit %s)" % (source_dir / PROTO, status))
    (target / "__init__.py").write_text('"""Generated from proto/lymph/v1/lymph.proto at build time."""\n')


class BuildPyWithStubs(build_py):
    def run(self):
        super().run()
        # An editable install imports lymph/ from here: the stubs go beside it
        # (lymph/v1/ is git-ignored); any other build puts them in the wheel.
        generate(HERE if getattr(self, "editable_mode", False) else self.build_lib)


class SdistWithProto(sdist):
    """The sdist carries the proto (as proto/), so it builds on its own."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        copy = Path(base_dir) / "proto" / PROTO
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(proto_dir() / PROTO, copy)


def scratch():
    """A temporary directory for setuptools' by-products, removed at exit."""
    path = tempfile.mkdtemp(prefix="lymph-sdk-build-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


SCRATCH = scratch()

setup(
    cmdclass={"build_py": BuildPyWithStubs, "sdist": SdistWithProto},
    options={
        "build": {"build_base": os.path.join(SCRATCH, "build")},
        "egg_info": {"egg_base": SCRATCH},
    },
)
