"""Test-only code: tiny model builders and process helpers that the package never imports."""
