"""watch's owners map, kept up to date by :class:`OwnerTracker`, against a full scan.

A real process opens, swaps and shares sockets; after each step the tracker,
told which sockets exist, must name the holders :func:`scan_owners` names, and
must not have read every process to get there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from sockdiff.processes import OwnerTracker, scan_owners
from tests.helpers.netns import netns_exec_argv

# Holds UDP sockets and answers one line a command: "open" opens one, "swap"
# closes the newest and opens another in its place (the number of descriptors
# stays), "rename NAME" renames it, "fork" starts a child that holds them all too (its pid), "release"
# makes the child put /dev/null on each of their numbers (it lets go of them and lives on), "reap" ends it.
# Every answer lists the inodes held.
HOLDER = """
import os, signal, socket, sys
held = []
child = 0
for line in sys.stdin:
    command = line.strip()
    if command == "open":
        held.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    elif command == "swap":
        held.pop().close()
        held.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    elif command == "fork":
        ack_r, ack_w = os.pipe()
        child = os.fork()
        if child == 0:
            def release(*_):
                null = os.open("/dev/null", os.O_RDONLY)
                for sock in held:
                    os.dup2(null, sock.fileno())
                os.close(null)
                os.write(ack_w, b"!")
            signal.signal(signal.SIGUSR1, release)
            os.write(ack_w, b"!")
            while True:
                signal.pause()
        os.read(ack_r, 1)
    elif command == "release":
        os.kill(child, signal.SIGUSR1)
        os.read(ack_r, 1)
    elif command.startswith("rename "):  # as exec or prctl(PR_SET_NAME) would
        with open("/proc/self/comm", "w") as comm:
            comm.write(command[7:])
    elif command == "reap":
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        child = 0
    print(child, *(os.fstat(s.fileno()).st_ino for s in held), flush=True)
"""


class Holder:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.child = 0
        self.inodes: set[int] = set()

    def do(self, command: str) -> set[int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        child, *inodes = (int(word) for word in self.process.stdout.readline().split())
        self.child, self.inodes = child, set(inodes)
        return self.inodes


@pytest.fixture
def holder() -> Iterator[Holder]:
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        yield Holder(process)
        assert process.stdin is not None
        process.stdin.close()
        process.wait(30)


def check(tracker: OwnerTracker, holder: Holder) -> None:
    """The tracker's holders of the holder's sockets are a full scan's."""
    full = scan_owners()
    assert {i: tracker.owners.get(i) for i in holder.inodes} == {i: full.get(i) for i in holder.inodes}
    pids = {p.pid for i in holder.inodes for p in full[i]}
    assert pids == ({holder.process.pid, holder.child} - {0})


def test_tracker_follows_sockets_and_processes(holder: Holder) -> None:
    tracker = OwnerTracker()
    changed = tracker.update(holder.do("open"))
    check(tracker, holder)
    assert holder.inodes <= changed
    all_descriptors = tracker.descriptors_read

    before = set(holder.inodes)
    changed = tracker.update(holder.do("open"))  # one more descriptor: that process is read again
    check(tracker, holder)
    assert holder.inodes - before <= changed
    extra = tracker.descriptors_read - all_descriptors
    assert extra < all_descriptors / 2, "read more than a few descriptors"

    before = set(holder.inodes)
    changed = tracker.update(holder.do("swap"))  # as many descriptors as before: found all the same
    check(tracker, holder)
    assert holder.inodes - before <= changed

    holder.do("rename renamed-holder")
    changed = tracker.update(holder.do("open"))  # it is read again: the name of now, on every socket
    check(tracker, holder)
    assert {p.name for i in holder.inodes for p in tracker.owners[i]} == {"renamed-holder"}
    assert holder.inodes <= changed

    changed = tracker.update(holder.do("fork"))  # no new socket; a new process holds them all
    check(tracker, holder)
    assert changed >= holder.inodes

    changed = tracker.update(holder.do("reap"))  # it exits: its holdings go, nothing is read
    check(tracker, holder)
    assert changed >= holder.inodes

    reads = tracker.descriptors_read
    assert tracker.update(holder.inodes) == set()  # nothing changed: no process of ours read
    assert tracker.descriptors_read - reads < all_descriptors / 2


def test_tracker_remembers_sockets_no_process_holds() -> None:
    """An inode no process holds is looked for once (a whole pass), not at every update."""
    tracker = OwnerTracker()
    tracker.update(set())
    unheld = {(1 << 40) + os.getpid()}  # no socket has this inode
    tracker.update(unheld)
    reads = tracker.processes_read
    assert tracker.update(unheld) == set()
    assert tracker.processes_read - reads < len([e for e in os.listdir("/proc") if e.isdigit()]) / 2


def test_tracker_sees_a_forked_holder_let_go_of_shared_sockets(holder: Holder) -> None:
    """A pre-fork server's worker closes its copy of the listener and lives on: it is no longer
    named, though no socket came or went and its number of descriptors stayed."""
    tracker = OwnerTracker()
    tracker.update(holder.do("open"))
    tracker.update(holder.do("fork"))
    check(tracker, holder)
    child = holder.child
    changed = tracker.follow((), ())  # what watch says when no socket came or went
    assert changed == set()
    holder.do("release")
    changed = tracker.follow((), ())
    full = scan_owners()
    assert {i: tracker.owners.get(i) for i in holder.inodes} == {i: full.get(i) for i in holder.inodes}
    assert {p.pid for i in holder.inodes for p in tracker.owners[i]} == {holder.process.pid}, child
    assert changed == holder.inodes


def test_tracker_names_the_namespaces_descriptors_hold(netns: str) -> None:
    """A network namespace held open by a descriptor (ours only: a fresh one) is in
    :attr:`OwnerTracker.held_netns`, as a full scan finds it, with a path that opens it."""
    # Opened through a process inside (a descriptor of the mount under /run/netns reads as that path).
    inside = subprocess.Popen(netns_exec_argv(netns, ["sleep", "60"]))
    try:
        for _ in range(1000):  # until ip netns exec has entered it and become sleep
            if os.readlink(f"/proc/{inside.pid}/exe").endswith("/sleep"):
                break
            time.sleep(0.01)
        held = os.open(f"/proc/{inside.pid}/ns/net", os.O_RDONLY)
    finally:
        inside.kill()
        inside.wait()
    try:
        tracker = OwnerTracker()
        tracker.update(set())
        inode = os.fstat(held).st_ino
        assert inode in tracker.held_netns
        found: dict[int, str] = {}
        scan_owners(held_netns=found)
        assert inode in found
        assert os.stat(tracker.held_netns[inode]).st_ino == inode
    finally:
        os.close(held)


# Passes what it holds to a process started before (SCM_RIGHTS), then, told to, closes its own copy;
# or renames itself. One line a command; each answer is the receiver's pid and the inode passed.
PASSER = """
import array, os, socket, sys
a, b = socket.socketpair()
receiver = os.fork()
if receiver == 0:
    a.close()
    got = b.recvmsg(1, socket.CMSG_LEN(4))[1]  # the socket, held from now on
    name = b.recv(64)
    if name:
        with open("/proc/self/comm", "wb") as comm:
            comm.write(name)
        b.send(b"!")
        b.recv(1)  # until its parent goes
    os._exit(0)
b.close()
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
inode = os.fstat(sock.fileno()).st_ino
print(receiver, inode, flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "pass":
        a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [sock.fileno()]))])
    elif command == "close":
        sock.close()
    elif command.startswith("rename "):
        a.send(command[7:].encode())
        a.recv(1)
    print(receiver, inode, flush=True)
a.close()
os.waitpid(receiver, 0)
"""


def test_tracker_sees_a_socket_passed_and_a_holder_renamed_with_no_socket_coming() -> None:
    """A socket sent to another process, the sender's copy closed, the receiver renamed: each
    at the next update, though no socket came or went (what watch tells it then)."""
    with subprocess.Popen(
        [sys.executable, "-c", PASSER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdin is not None and process.stdout is not None

        def do(command: str) -> None:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(command + "\n")
            process.stdin.flush()
            process.stdout.readline()

        receiver, inode = (int(word) for word in process.stdout.readline().split())
        try:
            tracker = OwnerTracker()
            tracker.update({inode})
            assert {p.pid for p in tracker.owners[inode]} == {process.pid}
            do("pass")
            time.sleep(0.2)  # the receiver takes it
            assert tracker.follow((), ()) == {inode}
            assert {p.pid for p in tracker.owners[inode]} == {process.pid, receiver}
            do("close")
            assert tracker.follow((), ()) == {inode}
            assert {p.pid for p in tracker.owners[inode]} == {receiver}
            do("rename passed-to")
            assert tracker.follow((), ()) == {inode}
            assert [p.name for p in tracker.owners[inode]] == ["passed-to"]
            assert tracker.follow((), ()) == set()
        finally:
            process.stdin.close()  # both end
            process.wait(30)
