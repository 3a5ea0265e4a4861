"""Shared fixtures: private network namespaces and a zoo of real sockets inside one.

Fixtures
--------
``netns``
    The name of a fresh network namespace (loopback up) for one test; deleted
    afterwards with anything still running in it. ``module_netns`` is the same
    for a whole test module.
``zoo``
    A :class:`tests.helpers.zoo.ZooClient`: ``tests/helpers/zoo.py`` running inside the test's
    ``netns`` with the interpreter running pytest. ``zoo.manifest`` is the
    zoo's current manifest (``zoo.sockets``: NAME -> record; ``zoo.pid``,
    ``zoo.child_pid``, ``zoo.netns``), ``zoo.command({...})`` sends one command
    and returns its JSON answer, ``zoo.check({...})`` the same but raising
    :class:`tests.helpers.zoo.ZooError` unless the answer is ``ok``. See ``tests/helpers/zoo.py`` for
    the socket names, the record fields and the commands. The zoo's whole
    process tree is killed afterwards.

Tests that use either fixture get the ``netns`` marker, and every test with
that marker skips where namespaces are unavailable (not root, no ``ip``) --
but fails when ``CI=true``: see :func:`tests.helpers.netns.require_netns`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.netns import delete_netns, our_netns, private_netns, require_netns
from tests.helpers.zoo import ZooClient, start_zoo

_NETNS_FIXTURES = frozenset({"netns", "module_netns", "zoo"})


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``netns`` marker (pyproject.toml does too; twice is harmless)."""
    config.addinivalue_line(
        "markers", "netns: needs root and network namespaces (fails instead of skipping when CI=true)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a namespace fixture with ``netns``."""
    for item in items:
        if _NETNS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.netns)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, on CI, fail) ``netns``-marked tests where namespaces are unavailable."""
    if item.get_closest_marker("netns") is not None:
        require_netns()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Delete any namespace this pytest process made and somehow left behind."""
    del session, exitstatus
    try:
        leftovers = our_netns()
    except Exception:  # no ip, no root: then there is nothing to clean either
        return
    for name in leftovers:
        delete_netns(name)


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh network namespace (loopback up) for one test: its name."""
    require_netns()
    with private_netns() as name:
        yield name


@pytest.fixture(scope="module")
def module_netns() -> Iterator[str]:
    """A fresh network namespace shared by the tests of one module: its name."""
    require_netns()
    with private_netns() as name:
        yield name


@pytest.fixture
def zoo(netns: str) -> Iterator[ZooClient]:
    """The socket zoo (``tests/helpers/zoo.py``) running in the test's own ``netns``."""
    with start_zoo(netns) as client:
        yield client
