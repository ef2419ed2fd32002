"""lymph's `lymph.core` import paths, for code written against Python lymph."""
