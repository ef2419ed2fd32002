"""The generated gRPC stubs of proto/lymph/v1/lymph.proto, imported in one
place with a clear error when the package was not built (the stubs are made
by the package's build, never committed)."""

try:
    from lymph.v1 import lymph_pb2 as pb
    from lymph.v1 import lymph_pb2_grpc as pb_grpc
except ImportError as e:  # pragma: no cover - only without a build
    raise ImportError(
        "lymph's gRPC stubs are missing (%s): install the package with "
        "`pip install ./sdk-python`, which generates them from proto/" % e
    ) from e

__all__ = ["pb", "pb_grpc"]
