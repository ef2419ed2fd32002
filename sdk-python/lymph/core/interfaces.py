"""lymph's `lymph.core.interfaces`."""

from lymph.interface import Interface  # noqa: F401
from lymph.proxy import Proxy  # noqa: F401
