pytest_plugins = ["lymph.testing.fixtures"]
