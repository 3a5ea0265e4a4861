"""What the tests share, imported as ``from tests.helpers.NAME import ...`` (see tests/README.md)."""
