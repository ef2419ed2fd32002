"""pytest fixtures: `pytest_plugins = ["lymph.testing.fixtures"]` in a
conftest.py, then a test takes `lymph_network` (a started LymphNetwork,
stopped after the test)."""

import pytest

from lymph.testing import LymphNetwork


@pytest.fixture
def lymph_network():
    network = LymphNetwork().start()
    try:
        yield network
    finally:
        network.stop()
