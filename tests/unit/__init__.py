"""Tests that need nothing of the machine: parsers on captured bytes, differ, formats, filter, codec."""
