"""Tests that use the machine: namespaces, live backends, the CLI as a subprocess, pytester."""
