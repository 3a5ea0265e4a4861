"""A daemon for the process-tree tests: a program that detaches from its parent."""

from __future__ import annotations

__all__ = ["DAEMON"]

# Forks twice and detaches (the classic daemon), listens, prints its pid, then waits.
DAEMON = """
import os, socket, sys, time
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
server = socket.create_server(("127.0.0.1", 0))
print(os.getpid(), os.fstat(server.fileno()).st_ino, flush=True)
time.sleep(600)
"""
