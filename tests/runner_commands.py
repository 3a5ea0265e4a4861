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
ICU, such a search skips default-ignorable code points (U+200B, U+00AD, ...), so
the model deletes them before searching, which can only find more commands.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

__all__ = ["Command", "parse"]

# DerivedCoreProperties.txt's Default_Ignorable_Code_Point beyond the format
# characters (category Cf), which the model deletes as a whole.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),
    (0x2060, 0x206F),
)


@dataclass(frozen=True)
class Command:
    """What the runner would run: its syntax (``v2`` ``::``, ``v1`` ``##[``), name, properties, data."""

    syntax: str
    name: str
    properties: dict[str, str] = field(default_factory=dict)
    data: str = ""


def _ignorable(char: str) -> bool:
    code = ord(char)
    return unicodedata.category(char) == "Cf" or any(low <= code <= high for low, high in _IGNORABLE_RANGES)


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
    message = "".join(c for c in line[start:] if not _ignorable(c))
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
    message = "".join(c for c in line if not _ignorable(c))
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
    """
    return _parse_v2(line) or _parse_v1(line)
