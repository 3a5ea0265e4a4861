"""A model of how GitHub's Actions runner finds workflow commands in a log line.

Written from actions/runner's source: ``src/Runner.Common/ActionCommand.cs``
(``TryParseV2``, ``TryParse``) and ``src/Runner.Worker/ActionCommandManager.cs``
(``TryProcessCommand``), which tries, on every line a step prints:

- ``TryParseV2``: the line, leading whitespace trimmed (``string.TrimStart``),
  starts with ``::``; the next ``::`` after it ends the command info; the name
  is the info up to its first space, properties ``k=v`` split on ``,``; the rest
  is the data (``%25``, ``%0D``, ``%0A`` unescaped);
- else ``TryParse`` (the older syntax): the first ``##[`` anywhere in the line,
  the next ``]`` after it ends the info; properties split on ``;``.

A name counts only if registered, but ``##[stop-commands]TOKEN`` registers any
TOKEN as a name, so the model takes every name as registered. The runner calls
``StartsWith``/``IndexOf`` without ``StringComparison.Ordinal``: where .NET uses
ICU, such a search skips the code points its collation ignores (U+200B, U+00AD,
but also printable ones: U+0640 ARABIC TATWEEL, Hebrew accents, ...). Rather
than hold ICU's table, the model deletes every character past ASCII before
searching, and trims whitespace after that: a superset of what the runner
finds, so a line the model passes is safe under any collation.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

__all__ = ["Command", "parse"]


@dataclass(frozen=True)
class Command:
    """What the runner would run: its syntax (``v2`` ``::``, ``v1`` ``##[``), name, properties, data."""

    syntax: str
    name: str
    properties: dict[str, str] = field(default_factory=dict)
    data: str = ""


def _skeleton(text: str) -> str:
    """``text`` as a collation that ignores every character past ASCII would search it."""
    return text if text.isascii() else "".join(c for c in text if c.isascii())


def _is_dotnet_space(char: str) -> bool:
    # char.IsWhiteSpace: Zs, Zl, Zp, U+0009-U+000D, U+0085 (Python's isspace() is a superset).
    return char.isspace() or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def _unescape(text: str, mappings: tuple[tuple[str, str], ...]) -> str:
    for token, replacement in mappings:
        text = text.replace(replacement, token)
    return text


_DATA = (("\r", "%0D"), ("\n", "%0A"), ("%", "%25"))
_PROPERTY = (("\r", "%0D"), ("\n", "%0A"), (":", "%3A"), (",", "%2C"), ("%", "%25"))
_V1 = ((";", "%3B"), ("\r", "%0D"), ("\n", "%0A"), ("]", "%5D"), ("%", "%25"))


def _parse_v2(line: str) -> Command | None:
    start = 0
    while start < len(line) and _is_dotnet_space(line[start]):
        start += 1
    message = line[start:]
    if not message.startswith("::"):
        return None
    end = message.find("::", 2)
    if end < 0:
        return None
    info = message[2:end]
    name, _, rest = info.partition(" ")
    properties = {}
    for pair in rest.strip().split(","):
        key, sep, value = pair.partition("=")
        if sep and key and value:
            properties[key] = _unescape(value, _PROPERTY)
    return Command("v2", name, properties, _unescape(message[end + 2 :], _DATA))


def _parse_v1(line: str) -> Command | None:
    message = line
    prefix = message.find("##[")
    if prefix < 0:
        return None
    bracket = message.find("]", prefix)
    if bracket < 0:
        return None
    info = message[prefix + 3 : bracket]
    name, _, rest = info.partition(" ")
    properties = {}
    for pair in rest.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key and value:
            properties[key] = _unescape(value, _V1)
    return Command("v1", name, properties, _unescape(message[bracket + 1 :], _V1))


def parse(line: str) -> Command | None:
    r"""The command the runner would find in ``line`` (one line, no line break), or None.

    >>> parse("::error title=a%3Ab::x%25")
    Command(syntax='v2', name='error', properties={'title': 'a:b'}, data='x%')
    >>> parse("+ u_str LISTEN @##[stop-commands]t 7 * 0").name
    'stop-commands'
    >>> parse("+ u_str LISTEN @#\\x23[stop-commands]t 7 * 0") is None
    True
    >>> parse("+ u_str LISTEN @#\u0640#[error]x 7 * 0").name  # ARABIC TATWEEL, ignored by ICU
    'error'
    """
    found = _parse_v2(line) or _parse_v1(line)
    if found is None and not line.isascii():  # what a collation skipping characters would find
        skeleton = _skeleton(line)
        found = _parse_v2(skeleton.lstrip()) or _parse_v1(skeleton)
    return found
