# The `lymph_network` fixture (a started lymph.testing.LymphNetwork). Imported
# rather than listed in pytest_plugins, which pytest allows only in the
# rootdir's conftest.py.
from lymph.testing.fixtures import lymph_network  # noqa: F401
