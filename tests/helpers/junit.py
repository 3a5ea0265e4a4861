"""JUnit documents against the schema Jenkins' xUnit plugin reads (tests/schemas/junit-10.xsd)."""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

__all__ = ["valid_for_jenkins"]

JENKINS_SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "junit-10.xsd"  # see schemas/README.md


@functools.cache
def jenkins_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(JENKINS_SCHEMA)))


def valid_for_jenkins(text: str) -> None:
    """``text`` is a JUnit document that Jenkins' xUnit plugin accepts (its junit-10.xsd)."""
    schema = jenkins_schema()
    assert schema.validate(etree.fromstring(text.encode())), schema.error_log
