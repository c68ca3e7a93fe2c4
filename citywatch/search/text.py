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
from collections.abc import Iterator

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
CANON_ALPHABET = "".join(sorted({c.translate(_CANON) for c in ALPHABET}))
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


def trigrams(normalised: str) -> set[str]:
    """Distinct trigrams of `^normalised$` (the n-gram index keys of partial search)."""
    s = f"^{normalised}$"
    return {s[i : i + 3] for i in range(len(s) - 2)}


def deletions(canonical: str) -> set[str]:
    """`canonical` and every text one character shorter (the variant index of fuzzy search).

    Two texts within one plain edit of each other share one of these; see `fuzzy_keys`."""
    return {canonical} | {canonical[:i] + canonical[i + 1 :] for i in range(len(canonical))}


def fuzzy_keys(canonical: str, edits: int) -> set[str]:
    """Keys to look up in the variant index (`deletions` of every stored canonical text) so
    that every stored text within `edits` (1 or 2) plain edits of `canonical` is found.

    One edit: the two texts share a deletion variant (a substitution at i: both without i;
    an insertion or deletion: the shorter one itself). Two edits, cases by the edits that
    turn the query q into the stored text t, and the variant of t each case reaches:
    two deletions, or a deletion and a substitution: t less the substituted character is q
    less two characters; a deletion and an insertion: t less the inserted character is q
    less one; an insertion and a substitution: t less the inserted character is q with one
    substitution; two insertions: t less one of them is q with one insertion; two
    substitutions at i < j: t less i is q less i with a substitution at j. About 1,100 keys
    for 7 characters."""
    c = canonical
    n = len(c)
    keys = deletions(c)
    if edits < 2:
        return keys
    alphabet = CANON_ALPHABET
    for i in range(n):
        less = c[:i] + c[i + 1 :]
        for j in range(i, n - 1):
            keys.add(less[:j] + less[j + 1 :])  # two deletions
            for a in alphabet:
                keys.add(less[:j] + a + less[j + 1 :])  # less i, substituted after it
        for a in alphabet:
            keys.add(c[:i] + a + c[i + 1 :])  # one substitution
    for i in range(n + 1):
        for a in alphabet:
            keys.add(c[:i] + a + c[i:])  # one insertion
    return keys


def levenshtein(a: str, b: str) -> int:
    """Plain edit distance (bit-parallel, Myers/Hyyrö): a fast first check before
    `weighted_distance`, which is never smaller on canonical forms."""
    m = len(a)
    if m == 0:
        return len(b)
    peq: dict[str, int] = {}
    for i, ch in enumerate(a):
        peq[ch] = peq.get(ch, 0) | (1 << i)
    mask = (1 << m) - 1
    top = 1 << (m - 1)
    pv, mv, score = mask, 0, m
    for ch in b:
        eq = peq.get(ch, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = (mv | ~(xh | pv)) & mask
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = (mh | ~(xv | ph)) & mask
        mv = ph & xv
    return score


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
        partner = _PARTNER.get(ca)
        left = row_min = float(i)
        cur = [left]
        for j, cb in enumerate(b):
            # the cheapest of: substitute (free, a confusion or other), delete, insert
            d = prev[j] + (0.0 if cb == ca else CONFUSION_COST if cb == partner else 1.0)
            if prev[j + 1] + 1.0 < d:
                d = prev[j + 1] + 1.0
            if left + 1.0 < d:
                d = left + 1.0
            cur.append(d)
            left = d
            if d < row_min:
                row_min = d
        if row_min > limit:
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


def pattern_keys(pattern: str) -> list[str]:
    """N-gram index keys every match of a parsed pattern has: the trigrams of its literal
    runs (with `^`/`$` where anchored); a run of two gives a two-character key, meaning every
    trigram that starts with it (each occurrence is followed by a character or `$`)."""
    out: list[str] = []
    for frag in pattern_fragments(pattern):
        if len(frag) >= 3:
            out.extend(frag[i : i + 3] for i in range(len(frag) - 2))
        elif len(frag) == 2 and not frag.endswith("$"):
            out.append(frag)
    return sorted(set(out))


def pattern_prefix(pattern: str) -> str:
    """The literal characters a parsed pattern starts with (`BG12?AB` -> `BG12`)."""
    m = re.match(r"[A-Z0-9]*", pattern)
    return m.group(0) if m else ""
