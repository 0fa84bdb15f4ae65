"""The test suite; a package so that test-only code can live in ``tests/helpers``."""
