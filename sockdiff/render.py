"""What sockdiff/pytest_plugin.py imports from here until it calls formats/ itself.

Every rendering lives in :mod:`sockdiff.formats` (the notation in
:mod:`sockdiff.formats.notation`); nothing else imports this module.
"""

from __future__ import annotations

from .formats.notation import escape, socket_line

__all__ = ["escape", "socket_line"]
