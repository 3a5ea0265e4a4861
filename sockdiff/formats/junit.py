"""``junit``: a JUnit XML document, one test case a difference, as CI systems render them.

``<testsuites>`` holds one ``<testsuite name="sockdiff">``; each difference is a
``<testcase classname="sockdiff.SECTION">`` that carries a ``<failure>`` when
``fail_on`` counts it. With no difference there is one passing test case, so
a report always shows that the check ran.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from .base import DiffFormat, ReportOptions
from .items import items

if TYPE_CHECKING:
    from ..differ import Diff

__all__ = ["JunitFormat", "xml_text"]

# Characters XML 1.0 cannot hold at all, even as references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(text: str) -> str:
    r"""``text`` with what XML cannot hold written as ``\xNN``.

    >>> xml_text("a\x01b")
    'a\\x01b'
    """
    return _NOT_XML.sub(lambda found: f"\\x{ord(found[0]):02x}", text)


class JunitFormat(DiffFormat):
    def render(self, result: Diff, options: ReportOptions) -> str:
        found = list(items(result, options.fail_on))
        failures = sum(item.counted for item in found)
        tests = max(len(found), 1)
        # Jenkins' junit-10.xsd allows "skipped" on <testsuite> only; "time" is
        # required by some readers on every element, and no case takes any.
        counts = {"tests": str(tests), "failures": str(failures), "errors": "0", "time": "0"}
        suites = ElementTree.Element("testsuites", {"name": "sockdiff", **counts})
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            {"name": "sockdiff", **counts, "skipped": "0", "timestamp": result.new.header.taken_at},
        )
        for item in found:
            case = ElementTree.SubElement(
                suite,
                "testcase",
                {
                    "classname": f"sockdiff.{item.section}",
                    "name": xml_text(f"{item.kind} {item.subject}"),
                    "time": "0",
                },
            )
            if item.counted:
                failure = ElementTree.SubElement(
                    case, "failure", {"message": xml_text(item.line), "type": item.kind}
                )
                failure.text = xml_text(item.line)
            else:
                ElementTree.SubElement(case, "system-out").text = xml_text(item.line)
        if not found:
            ElementTree.SubElement(
                suite, "testcase", {"classname": "sockdiff.sockets", "name": "no differences", "time": "0"}
            )
        ElementTree.indent(suites)
        body = ElementTree.tostring(suites, encoding="unicode")
        return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
