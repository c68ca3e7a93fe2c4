"""Plate text rules shared by search and hotlists: normalisation, OCR-confusion folding,
weighted edit distance and `*`/`?` patterns.

Normalised text is upper-case A-Z and 0-9 only (spaces, dashes and dots dropped, Latin
letters with diacritics folded: Č Ć -> C, Š -> S, Ž -> Z, Đ -> D, Ä -> A). The OCR confusions
(O/0, I/1, B/8, S/5, Z/2, G/6) cost half an edit; `canon` folds each pair to one character,
so two texts that differ only by confusions have the same canonical form.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator

ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
CONFUSIONS: tuple[tuple[str, str], ...] = (
    ("O", "0"),
    ("I", "1"),
    ("B", "8"),
    ("S", "5"),
    ("Z", "2"),
    ("G", "6"),
)
CONFUSION_COST = 0.5
MAX_LEN = 16
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015.\u00b7_/]+")
_FOLD_EXTRA = {"Đ": "D", "Ø": "O", "Æ": "AE", "Ł": "L", "ß": "SS"}
_CANON = str.maketrans({a: b for a, b in CONFUSIONS})
_PARTNER: dict[str, str] = {}
for _a, _b in CONFUSIONS:
    _PARTNER[_a], _PARTNER[_b] = _b, _a


class PlateTextError(ValueError):
    """A plate text or pattern that cannot be searched; the message says why."""


def fold(ch: str) -> str:
    """Latin letters with diacritics to A-Z (Č -> C, Đ -> D, Ä -> A); others unchanged."""
    if ch.isascii():
        return ch
    if ch in _FOLD_EXTRA:
        return _FOLD_EXTRA[ch]
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return base if base.isascii() and base.isalpha() else ch


def _flat(text: str) -> str:
    return "".join(fold(c) for c in _SEPARATORS.sub("", text.strip()).upper())


def normalise(text: str) -> str:
    """`"bg 123-ab"` -> `"BG123AB"`, `"BČ 12"` -> `"BC12"`; raises PlateTextError for
    empty or non-Latin text."""
    s = _flat(text)
    if not s:
        raise PlateTextError("empty plate text")
    if len(s) > MAX_LEN:
        raise PlateTextError(f"plate text longer than {MAX_LEN} characters")
    bad = sorted({c for c in s if c not in ALPHABET})
    if bad:
        raise PlateTextError(
            f"plate text may contain only Latin letters A-Z and digits 0-9, not {''.join(bad)!r}"
        )
    return s


def canon(normalised: str) -> str:
    """Fold each OCR-confusion pair to one character (O->0, I->1, B->8, S->5, Z->2, G->6)."""
    return normalised.translate(_CANON)


def grams(canonical: str) -> set[str]:
    """Distinct bigrams of `^canonical$` (the n-gram index keys)."""
    s = f"^{canonical}$"
    return {s[i : i + 2] for i in range(len(s) - 1)}


def sub_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    return CONFUSION_COST if _PARTNER.get(a) == b else 1.0


def weighted_distance(a: str, b: str, limit: float = 99.0) -> float:
    """Levenshtein distance where an OCR-confusion substitution costs 0.5 and every other
    edit 1. Returns a value > `limit` as soon as the distance must exceed it."""
    if a == b:
        return 0.0
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = [float(j) for j in range(len(b) + 1)]
    for i, ca in enumerate(a, 1):
        cur = [float(i)] + [0.0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + sub_cost(ca, cb))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


def confusion_variants(text: str, max_swaps: int) -> Iterator[tuple[str, int]]:
    """`text` and each text that differs from it by at most `max_swaps` confusion swaps,
    with the number of swaps (0 first)."""
    yield text, 0
    spots = [i for i, c in enumerate(text) if c in _PARTNER]
    for n in range(1, max_swaps + 1):
        for combo in itertools.combinations(spots, n):
            chars = list(text)
            for i in combo:
                chars[i] = _PARTNER[chars[i]]
            yield "".join(chars), n


# patterns -------------------------------------------------------------------------------
def parse_pattern(pattern: str) -> str:
    """Validate a `*`/`?` pattern (`*12*`, `BG12?`, `BG*AB`) and return it normalised.
    A pattern without a wildcard means "contains" (`12` -> `*12*`)."""
    raw = _flat(pattern)
    if not raw:
        raise PlateTextError("empty pattern")
    if len(raw) > MAX_LEN + 4:
        raise PlateTextError(f"pattern longer than {MAX_LEN + 4} characters")
    bad = sorted({c for c in raw if c not in ALPHABET and c not in "*?"})
    if bad:
        raise PlateTextError(
            f"pattern may contain only A-Z, 0-9, * (any run) and ? (one character), "
            f"not {''.join(bad)!r}"
        )
    if "*" not in raw and "?" not in raw:
        raw = f"*{raw}*"
    raw = re.sub(r"\*+", "*", raw)
    literals = sum(1 for c in raw if c in ALPHABET)
    if literals < 2:
        raise PlateTextError("pattern needs at least 2 letters or digits besides * and ?")
    return raw


def pattern_like(pattern: str) -> str:
    """SQL LIKE form of a parsed pattern (no escaping needed: % and _ cannot occur)."""
    return pattern.replace("*", "%").replace("?", "_")


def pattern_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else c for c in pattern))


def pattern_fragments(pattern: str) -> list[str]:
    """The literal runs of a parsed pattern, with `^`/`$` where it is anchored."""
    s = pattern
    if not s.startswith("*"):
        s = "^" + s
    if not s.endswith("*"):
        s = s + "$"
    return [f for f in re.split(r"[*?]+", s) if f]


def fragment_grams(fragments: Iterable[str]) -> set[str]:
    """Bigrams every match of the pattern must have (in canonical form)."""
    out: set[str] = set()
    for f in fragments:
        c = canon(f)
        out.update(c[i : i + 2] for i in range(len(c) - 1))
    return out
