"""Cleaning one instruction or response: invisible characters removed, text of nothing visible made empty.

Pools carry texts that look empty but are not: ShareGPT has 171 responses that are only a zero-width space, and
a fuzz corpus found 200 made only of soft hyphens, direction marks, Hangul fillers or word joiners. `clean_text`
returns "" for every text with no visible character (the pool then counts the pair as `empty`), drops the
zero-width characters that only break matching and de-duplication, and keeps a zero-width (non-)joiner between
two visible non-ASCII characters, where it is part of the writing: emoji sequences (family, profession and flag
emoji), Indic half forms, Persian words. O(length) per text.
"""

from __future__ import annotations

import re
import unicodedata

# Removed from any text (unless protected, see below): zero-width space/non-joiner/joiner, word joiner, BOM.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
JOINERS = "\u200c\u200d"
# Shown as nothing although not of a format/space category: combining grapheme joiner, Hangul fillers, Khmer
# inherent vowels, Mongolian variation selectors, braille blank, variation selectors (default-ignorable or blank).
BLANK = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u2800\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
_INVISIBLE_CATEGORIES = {"Cf", "Cc", "Zs", "Zl", "Zp"}  # format (soft hyphen, LRM, ...), controls, spaces
_ZERO_WIDTH = re.compile(f"[{ZERO_WIDTH}]")
_VISIBLE_ASCII = re.compile(r"[!-~]")


def is_invisible(char: str) -> bool:
    """True for a character that shows nothing on its own (a format or space character, or one of `BLANK`)."""
    return char in BLANK or unicodedata.category(char) in _INVISIBLE_CATEGORIES


def is_blank(text: str) -> bool:
    """True when `text` has no visible character (empty, spaces, or only invisible characters)."""
    if _VISIBLE_ASCII.search(text):
        return False
    return all(is_invisible(char) for char in text)


def _keep_joiner(text: str, start: int) -> bool:
    """A joiner between two visible non-ASCII characters belongs to the writing (emoji, Indic, Persian)."""
    if text[start] not in JOINERS or start == 0 or start + 1 >= len(text):
        return False
    before, after = text[start - 1], text[start + 1]
    return all(ord(c) > 0x7F and c not in ZERO_WIDTH and not c.isspace() for c in (before, after))


def clean_text(text: str) -> str:
    """`text` without stray zero-width characters and outer whitespace; "" when nothing visible is left."""
    if is_blank(text):
        return ""
    if any(char in text for char in ZERO_WIDTH):
        text = _ZERO_WIDTH.sub(lambda m: m.group() if _keep_joiner(m.string, m.start()) else "", text)
    return text.strip()
