"""The searchable parts of a person's name, before any key touches them.

A stored name gives a set of (kind, text) parts; a search text gives the parts it asks
for. The vault turns each part into a truncated keyed HMAC (a name token); a search
matches a customer when one of its tokens equals one asked for, and the match is
confirmed by comparing these same parts of the decrypted name. No part is a prefix of
a word: prefixes would give every customer a token per letter typed, and the rarest
prefixes single people out (README, "Name search").

Kinds: `full` (the whole name; a Latin-script one with its words sorted, so word order
and commas do not matter), `word` (each word of a Latin-script name: the surname
and each given name, whichever order the name is written in) and `surname` (a Chinese
name's family name: a known two-character compound surname, else the first character).
"""

from __future__ import annotations

import unicodedata
from typing import Final

from server.errors import ValidationError

FULL: Final = "full"
WORD: Final = "word"
SURNAME: Final = "surname"
NAME_PART_KINDS = (FULL, WORD, SURNAME)
# Longest search text read; longer ones are refused before any work.
MAX_NAME_QUERY = 128

# Two-character Chinese family names (复姓) in use today. A name starting with one of
# these has it as its surname, not its first character alone.
COMPOUND_SURNAMES: Final = frozenset(
    (
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "轩辕",
        "令狐",
        "钟离",
        "澹台",
        "公冶",
        "太史",
        "申屠",
        "端木",
        "独孤",
        "南宫",
        "西门",
        "百里",
        "呼延",
        "闻人",
        "赫连",
        "拓跋",
        "司空",
        "第五",
        "濮阳",
        "淳于",
        "单于",
        "东郭",
        "左丘",
        "仲孙",
        "乐正",
        "梁丘",
        "万俟",
        "亓官",
        "段干",
        "巫马",
        "公羊",
        "谷梁",
        "宰父",
        "微生",
        "羊舌",
    )
)
# Separators inside Chinese names of minority or foreign origin (阿依古丽·买买提).
_HAN_SEPARATORS = frozenset("·・•‧ ")


def _is_han(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x3134F
    )


def normalise_name(value: str) -> str:
    """One spelling per name: compatibility forms folded (full-width letters, the
    various middle dots), case folded, runs of spaces made one; Chinese names lose
    their spaces ("张 三" is "张三")."""
    text = " ".join(unicodedata.normalize("NFKC", value).casefold().split())
    if is_han_name(text):
        text = "".join(ch for ch in text if ch not in _HAN_SEPARATORS)
    return text


def is_han_name(text: str) -> bool:
    letters = [ch for ch in text if ch not in _HAN_SEPARATORS]
    return bool(letters) and all(_is_han(ch) for ch in letters)


def chinese_surname(name: str) -> str:
    return name[:2] if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else name[:1]


def name_parts(name: str) -> frozenset[tuple[str, str]]:
    """The (kind, text) parts a stored name is found by."""
    text = normalise_name(name)
    if not text:
        return frozenset()
    parts = {(FULL, text)}
    if is_han_name(text):
        parts.add((SURNAME, chinese_surname(text)))
    else:
        words = _words(text)
        parts = {(FULL, " ".join(sorted(words)))}
        if len(words) > 1:
            parts |= {(WORD, word) for word in words}
    return frozenset(parts)


def _words(text: str) -> list[str]:
    """A Latin-script name's words; "Smith, John" and "John Smith" have the same ones."""
    return text.replace(",", " ").split()


def query_parts(query: str) -> frozenset[tuple[str, str]]:
    """The parts a search text asks for: a customer matches if it has any of them.

    Chinese: one character is a surname; a known compound surname is a surname or a
    whole two-character name; anything longer is a whole name. Latin script: one word is
    a surname, a given name or a one-word name; several words are a whole name.
    """
    if len(query) > MAX_NAME_QUERY:
        raise ValidationError(
            f"a name search is at most {MAX_NAME_QUERY} characters", field="filter.name"
        )
    text = normalise_name(query)
    if not text:
        raise ValidationError("a name search needs a name", field="filter.name")
    if is_han_name(text):
        if len(text) == 1:
            return frozenset({(SURNAME, text)})
        if text in COMPOUND_SURNAMES:
            return frozenset({(SURNAME, text), (FULL, text)})
        return frozenset({(FULL, text)})
    words = _words(text)
    if not words:
        raise ValidationError("a name search needs a name", field="filter.name")
    if len(words) == 1:
        return frozenset({(WORD, words[0]), (FULL, words[0])})
    # A whole name in any order: the full part is its words sorted.
    return frozenset({(FULL, " ".join(sorted(words)))})
