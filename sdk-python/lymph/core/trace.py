"""lymph's `lymph.core.trace`: `get_id()` and `set_id()`."""

from lymph.trace import get_id, set_id  # noqa: F401
