"""Which thread of this process made a socket, and in whose time that thread started.

A socket held by this process says which process holds it, never which thread
made it. :class:`SocketMakers` learns it from Python's audit events: the
interpreter raises ``socket.__new__`` in the thread that creates a socket object
(``socket()``, ``accept()``, ``socketpair()``, ``fromfd()``...), and an audit hook
keeps, for each socket object made outside the *home* thread (the one whose
work is being checked, pytest's main thread), that thread and its *starter*.

The starter is a label given by the caller (:meth:`SocketMakers.enter`): the
test or fixture running when the thread appeared. ``threading.Thread.start()``
returns only once the new thread is running and listed by ``threading.enumerate()``,
so every thread started while a label was current is listed when the label is
left: :meth:`enter` gives the threads listed for the first time the label it
leaves. A thread started by another thread than the home one takes its parent's
starter: Python 3.11 raises no audit event when a thread starts
(``_thread.start_new_thread`` is audited from 3.12), so, while listening,
``threading.Thread.start`` is wrapped (one comparison more for a thread the home
thread starts). A thread started through ``_thread`` directly still belongs to
the label current when it appeared.

Cost: an audit hook runs on every audited event of the interpreter (``open``,
``import``, ``sys._getframe``...); this one compares the event's name and
returns (0.1 µs an event, against 0.45 µs for a bound method as the hook, on a
2-vCPU VM), and does more only for sockets made outside the home thread. Audit
hooks cannot be removed: :meth:`SocketMakers.stop` makes it record nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import weakref
from collections.abc import Mapping
from typing import Any

__all__ = ["Maker", "SocketMakers"]


@dataclasses.dataclass(frozen=True, slots=True)
class Maker:
    """The thread that made a socket object, and the label current when that thread appeared."""

    thread: threading.Thread
    starter: object

    @property
    def name(self) -> str:
        return self.thread.name


class SocketMakers:
    """The makers of this process's socket objects, for those made outside the home thread."""

    def __init__(self) -> None:
        self._home = threading.get_ident()
        self._label: object = None
        self._on = False
        self._hooked = False
        self._original_start: Any = None
        self._wrapped_start: Any = None
        self._lock = threading.Lock()
        self._threads: weakref.WeakKeyDictionary[threading.Thread, object] = weakref.WeakKeyDictionary()
        # socket object -> its maker: weak, so that a socket object collected takes its entry along
        self._sockets: weakref.WeakKeyDictionary[Any, Maker] = weakref.WeakKeyDictionary()
        # socket object -> the inode its fd held when first seen: a reused fd number is not it
        self._inodes: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    def start(self, label: object = None) -> None:
        """Listen to the interpreter's audit events (once a process: a hook stays for good).

        The threads running already, and those that appear until the next :meth:`enter`,
        started under ``label``.
        """
        self._label = label
        self._list_threads()
        self._on = True
        if self._original_start is None:
            self._original_start = original = threading.Thread.start
            home, inherit = self._home, self._inherit

            def start(thread: threading.Thread) -> None:
                if threading.get_ident() != home:
                    inherit(thread)
                original(thread)

            threading.Thread.start = self._wrapped_start = start  # type: ignore[method-assign,assignment]
        if not self._hooked:
            self._hooked = True
            record = self._record

            # A function, not a bound method: the interpreter calls a method hook four times slower.
            def audit(event: str, args: tuple[Any, ...]) -> None:
                if event == "socket.__new__":
                    record(args[0])

            sys.addaudithook(audit)

    def stop(self) -> None:
        self._on = False
        # Put back, unless someone wrapped it in turn since (theirs would call ours: left so).
        if self._original_start is not None and threading.Thread.start is self._wrapped_start:
            threading.Thread.start = self._original_start  # type: ignore[method-assign]
            self._original_start = self._wrapped_start = None

    def _inherit(self, thread: threading.Thread) -> None:
        """``thread``, being started by the current thread (not the home one), gets its starter."""
        parent = threading.current_thread()
        with self._lock:
            starter = self._threads.setdefault(parent, self._label)
            self._threads.setdefault(thread, starter)

    def enter(self, label: object) -> None:
        """Make ``label`` current; threads that appeared since the last call started under the old one."""
        self._list_threads()
        self._note_inodes()
        self._label = label

    def _list_threads(self) -> None:
        with self._lock:
            for thread in threading.enumerate():
                if thread.ident != self._home and thread not in self._threads:
                    self._threads[thread] = self._label

    def _record(self, sock: Any) -> None:
        if not self._on or threading.get_ident() == self._home:
            return
        thread = threading.current_thread()
        with self._lock:
            starter = self._threads.setdefault(thread, self._label)
            # A bare _socket.socket takes no weak reference: its maker stays unknown.
            with contextlib.suppress(TypeError):
                self._sockets[sock] = Maker(thread, starter)

    def made(self, fds: Mapping[int, int]) -> dict[int, Maker]:
        """The makers of the sockets ``fds`` maps (inode -> fd), by the socket objects that hold them now.

        A socket object is matched by its fd and by the inode it was first seen holding
        (at a label's change, or here): one whose descriptor was closed under it
        (``os.close(sock.fileno())``) still says that number, which a later socket may
        have been given.
        """
        wanted = {fd: inode for inode, fd in fds.items()}
        if not wanted:
            return {}
        self._note_inodes()
        with self._lock:
            known = [(sock, maker, self._inodes.get(sock)) for sock, maker in self._sockets.items()]
        found: dict[int, Maker] = {}
        for sock, maker, first in known:
            try:
                fd = sock.fileno()
            except (OSError, AttributeError):
                continue
            inode = wanted.get(fd)
            if inode is not None and inode == first:
                found[inode] = maker
        return found

    def _note_inodes(self) -> None:
        """Note the inode of each socket object seen for the first time since the last call."""
        with self._lock:
            new = [sock for sock in self._sockets if sock not in self._inodes]
        for sock in new:
            try:
                inode = os.fstat(sock.fileno()).st_ino
            except (OSError, AttributeError, ValueError):
                continue  # closed already (fileno() is -1), or not a socket object
            with self._lock:
                self._inodes.setdefault(sock, inode)
