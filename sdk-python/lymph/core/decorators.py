"""lymph's `lymph.core.decorators`."""

from lymph.decorators import event, rpc  # noqa: F401
