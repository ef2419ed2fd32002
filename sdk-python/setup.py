"""Generates the gRPC stubs of ../proto/lymph/v1/lymph.proto into the built
package (lymph/v1/) with grpcio-tools, so that `pip install ./sdk-python`
needs no protoc and the generated files are never committed. The stubs'
own imports (`from lymph.v1 import lymph_pb2`) resolve inside this package."""

import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# The repository's proto directory; LYMPH_PROTO_DIR overrides it (e.g. a copy
# next to an unpacked sdist).
PROTO_DIR = Path(os.environ.get("LYMPH_PROTO_DIR", HERE.parent / "proto"))
PROTO = Path("lymph") / "v1" / "lymph.proto"


def generate(out_dir):
    from grpc_tools import protoc  # a build requirement (pyproject.toml)
    import grpc_tools

    source = PROTO_DIR / PROTO
    if not source.exists():
        raise SystemExit(
            "cannot build lymph-sdk: %s is missing (build from the lymphd repository, "
            "or set LYMPH_PROTO_DIR)" % source
        )
    target = Path(out_dir) / "lymph" / "v1"
    target.mkdir(parents=True, exist_ok=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    status = protoc.main([
        "grpc_tools.protoc",
        "-I%s" % PROTO_DIR,
        "-I%s" % well_known,
        "--python_out=%s" % out_dir,
        "--grpc_python_out=%s" % out_dir,
        str(PROTO),
    ])
    if status != 0:
        raise SystemExit("grpc_tools.protoc failed on %s (exit %s)" % (source, status))
    (target / "__init__.py").write_text('"""Generated from proto/lymph/v1/lymph.proto at build time."""\n')


class BuildPyWithStubs(build_py):
    def run(self):
        super().run()
        generate(self.build_lib)


setup(cmdclass={"build_py": BuildPyWithStubs})
