"""Licence-plate formats as pluggable rules per country.

A rule is a sequence of character groups (letters, digits or either, each with a length
range) plus the separators printed between them, e.g. Serbian ``BG 123-AB``::

    PlateFormat("RS", (Group("L", 2, 2), Group("D", 3, 5), Group("L", 2, 3)), (" ", "-"))

``classify(text)`` normalises an OCR read, tries every rule of the chosen countries and
returns the best fit: the format name, the text printed the way the plate prints it, and a
confidence factor (1.0 for a read that fits a specific rule as it is). Where a position
wants a letter and the OCR gave a digit (or the reverse), the usual OCR confusions (O/0,
I/1, B/8, S/5, Z/2, G/6, ...) are corrected, each correction lowering the factor. A read
that fits no rule is kept as ``"unformatted"`` with a lower factor, never dropped.

New countries: ``register(PlateFormat(...))``; ``classify(text, countries=("RS", "EU"))``
limits the rules tried (for example to what a camera's country sees).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DIGIT_TO_LETTER",
    "FORMATS",
    "LETTER_TO_DIGIT",
    "UNFORMATTED",
    "Classification",
    "Group",
    "PlateFormat",
    "classify",
    "formats_for",
    "normalise",
    "register",
]

UNFORMATTED = "unformatted"
UNFORMATTED_FACTOR = 0.6
CORRECTION_PENALTY = 0.12  # factor lost per corrected character
MAX_CORRECTIONS = 2
TRIM_FACTOR = 0.85  # a read that fits only without its first or last character

# OCR confusions, per direction: what a digit read where a letter belongs most likely was,
# and the reverse.
DIGIT_TO_LETTER: dict[str, str] = {
    "0": "O", "1": "I", "2": "Z", "4": "A", "5": "S", "6": "G", "7": "T", "8": "B",
}  # fmt: skip
LETTER_TO_DIGIT: dict[str, str] = {
    "O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "J": "1", "T": "7",
    "Z": "2", "S": "5", "G": "6", "B": "8", "A": "4",
}  # fmt: skip

_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015.\u00b7_]+")

# Latin letters a European plate may carry besides A-Z (Serbian Č Ć Š Ž Đ and the like).
_LATIN_EXTRA = frozenset("ČĆŠŽĐÄÖÜÅÆØÉ")


def _is_latin_alnum(ch: str) -> bool:
    if ch.isascii():
        return ch.isalnum()
    return ch in _LATIN_EXTRA


def normalise(text: str) -> str:
    """Uppercase, without spaces, dashes, dots or other separators: ``"bg 123-ab"`` ->
    ``"BG123AB"``. ValueError for empty text or characters that are not Latin letters or
    digits (Cyrillic, CJK, punctuation other than separators)."""
    if not isinstance(text, str):
        raise ValueError(f"plate text must be a string, not {type(text).__name__}")
    flat = _SEPARATORS.sub("", unicodedata.normalize("NFC", text)).upper()
    if not flat:
        raise ValueError("empty plate text")
    bad = sorted({ch for ch in flat if not _is_latin_alnum(ch)})
    if bad:
        shown = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in bad[:5])
        raise ValueError(f"plate text must be Latin letters and digits; got {shown}")
    return flat


Kind = Literal["L", "D", "A"]  # letter, digit, either


@dataclass(frozen=True, slots=True)
class Group:
    """``min_len`` to ``max_len`` characters of one kind; ``alphabet`` limits which (for
    example no I, O or Q in a series)."""

    kind: Kind
    min_len: int
    max_len: int
    alphabet: str | None = None

    def allowed(self, ch: str) -> bool:
        if self.alphabet is not None:
            return ch in self.alphabet
        if self.kind == "L":
            return ch.isalpha()
        if self.kind == "D":
            return ch.isdigit()
        return True


@dataclass(frozen=True, slots=True)
class PlateFormat:
    """One layout of one country's plates.

    ``separators[i]`` is printed between group i and i+1. ``prefixes``: the values the first
    group may take where they are known (city codes); a read with another first group still
    fits, at ``unknown_prefix_factor``. ``base_factor``: how sure a fit is (lower for
    generic rules that almost anything fits). ``require_letter_and_digit``: reject reads of
    only letters or only digits (generic rules)."""

    name: str
    groups: tuple[Group, ...]
    separators: tuple[str, ...] = ()
    country: str = ""
    prefixes: frozenset[str] = field(default_factory=frozenset)
    unknown_prefix_factor: float = 0.9
    base_factor: float = 1.0
    require_letter_and_digit: bool = False

    def __post_init__(self) -> None:
        if not self.groups:
            raise ValueError(f"format {self.name!r} has no groups")
        if self.separators and len(self.separators) != len(self.groups) - 1:
            raise ValueError(f"format {self.name!r}: need {len(self.groups) - 1} separators")
        for g in self.groups:
            if not 1 <= g.min_len <= g.max_len:
                raise ValueError(f"format {self.name!r}: bad group length {g}")

    @property
    def min_len(self) -> int:
        return sum(g.min_len for g in self.groups)

    @property
    def max_len(self) -> int:
        return sum(g.max_len for g in self.groups)

    def match(self, flat: str) -> tuple[str, str, float] | None:
        """Best fit of a normalised read: (corrected flat text, formatted text, factor), or
        None when it cannot fit with at most MAX_CORRECTIONS corrections."""
        if not self.min_len <= len(flat) <= self.max_len:
            return None
        best: tuple[int, str, list[str]] | None = None
        ranges = [range(g.min_len, g.max_len + 1) for g in self.groups]
        for lengths in itertools.product(*ranges):
            if sum(lengths) != len(flat):
                continue
            parts: list[str] = []
            fixes = 0
            pos = 0
            for group, n in zip(self.groups, lengths, strict=True):
                chunk = []
                for ch in flat[pos : pos + n]:
                    fixed = _fit(ch, group)
                    if fixed is None:
                        fixes = MAX_CORRECTIONS + 1
                        break
                    fixes += fixed != ch
                    chunk.append(fixed)
                if fixes > MAX_CORRECTIONS:
                    break
                parts.append("".join(chunk))
                pos += n
            if fixes > MAX_CORRECTIONS:
                continue
            if best is None or fixes < best[0]:
                best = (fixes, "".join(parts), parts)
        if best is None:
            return None
        fixes, corrected, parts = best
        if self.require_letter_and_digit and not (
            any(c.isalpha() for c in corrected) and any(c.isdigit() for c in corrected)
        ):
            return None
        factor = self.base_factor - CORRECTION_PENALTY * fixes
        if self.prefixes and parts[0] not in self.prefixes:
            factor *= self.unknown_prefix_factor
        if self.separators:
            text = parts[0] + "".join(
                s + p for s, p in zip(self.separators, parts[1:], strict=True)
            )
        else:
            text = corrected
        return corrected, text, round(max(factor, 0.05), 4)


def _fit(ch: str, group: Group) -> str | None:
    if group.allowed(ch):
        return ch
    if group.kind == "L":
        alt = DIGIT_TO_LETTER.get(ch)
    elif group.kind == "D":
        alt = LETTER_TO_DIGIT.get(ch)
    else:
        alt = None
    if alt is not None and group.allowed(alt):
        return alt
    return None


@dataclass(frozen=True, slots=True)
class Classification:
    format: str  # a PlateFormat name or "unformatted"
    text: str  # as printed on the plate, e.g. "BG 123-AB"
    normalised: str  # "BG123AB" (after confusion corrections)
    factor: float  # 0..1, multiplies the OCR confidence
    country: str = ""

    def __iter__(self) -> Iterator[str | float]:
        """``name, text, factor = classify(...)`` unpacks like a 3-tuple."""
        return iter((self.format, self.text, self.factor))


# built-in rules ----------------------------------------------------------------------------
# Serbian registration areas (the two-letter city code); not exhaustive, an unknown code
# still fits at a slightly lower factor.
_SERBIAN_CITY_CODES = (
    "AL", "AR", "AC", "BB", "BČ", "BG", "BO", "BP", "BT", "BU", "BĆ", "ČA", "DE", "ĐA", "GL",
    "GM", "IN", "IC", "JA", "KA", "KV", "KG", "KI", "KL", "KM", "KŠ", "KO", "KŽ", "KC", "KZ",
    "LB", "LE", "LO", "LU", "NI", "NP", "NS", "NV", "NG", "PA", "PB", "PE", "PI", "PK", "PN",
    "PO", "PP", "PŽ", "PR", "PZ", "RA", "RU", "SA", "SD", "SO", "SP", "SU", "SM", "SJ", "SV",
    "ŠA", "ŠI", "TO", "TS", "TT", "UB", "UE", "UR", "VA", "VB", "VL", "VP", "VR", "VS", "VŠ",
    "ZA", "ZR",
)  # fmt: skip
SERBIAN_CITY_CODES = frozenset(_SERBIAN_CITY_CODES)
_L: Kind = "L"
_D: Kind = "D"
_A: Kind = "A"
_SPANISH_LETTERS = "BCDFGHJKLMNPRSTVWXYZ"

FORMATS: dict[str, PlateFormat] = {}


def register(fmt: PlateFormat) -> PlateFormat:
    """Add (or replace) a rule; rules are tried in the order registered."""
    FORMATS[fmt.name] = fmt
    return fmt


for _fmt in (
    # Serbia: BG 123-AB, NS 1234-CD, BG 12345-ABC
    PlateFormat(
        "RS", (Group(_L, 2, 2), Group(_D, 3, 5), Group(_L, 2, 3)), (" ", "-"),
        country="RS", prefixes=SERBIAN_CITY_CODES,
    ),
    # Serbia, short variants (motorcycles, trailers): BG 123-A, BG 1234-A
    PlateFormat(
        "RS-short", (Group(_L, 2, 2), Group(_D, 3, 4), Group(_L, 1, 1)), (" ", "-"),
        country="RS", prefixes=SERBIAN_CITY_CODES, base_factor=0.9,
    ),
    # Spain since 2000: 1234 BCD (no vowels, no Q or Ñ)
    PlateFormat(
        "ES", (Group(_D, 4, 4), Group(_L, 3, 3, _SPANISH_LETTERS)), (" ",), country="ES",
    ),
    # generic European: 4 to 8 letters and digits, at least one of each
    PlateFormat(
        "EU", (Group(_A, 4, 8),), country="EU", base_factor=0.8,
        require_letter_and_digit=True,
    ),
    # generic US: 5 to 7 letters and digits (most states), at least one digit and letter
    PlateFormat(
        "US", (Group(_A, 5, 7),), country="US", base_factor=0.8,
        require_letter_and_digit=True,
    ),
):  # fmt: skip
    register(_fmt)


def formats_for(countries: Iterable[str] | None = None) -> list[PlateFormat]:
    """The rules of some countries (by format name or country code), in registration order;
    all rules when None. ValueError for an unknown name."""
    if countries is None:
        return list(FORMATS.values())
    wanted = [c.strip().upper() for c in countries]
    out = [f for f in FORMATS.values() if f.name.upper() in wanted or f.country in wanted]
    known = {f.name.upper() for f in FORMATS.values()} | {f.country for f in FORMATS.values()}
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise ValueError(f"unknown plate format or country: {', '.join(unknown)}")
    return out


def classify(
    text: str, countries: Iterable[str] | None = None, *, rules: Sequence[PlateFormat] | None = None
) -> Classification:
    """The best rule for a read (see the module doc). ValueError for empty or non-Latin text.
    Ties go to the rule registered first."""
    flat = normalise(text)
    best: Classification | None = None
    # The read as it is, then without its first or last character (a plate's frame, a
    # bolt, the Euro band's country letter or a sticker read as one), at a lower factor.
    tries = [(flat, 1.0)]
    if len(flat) > 4:
        tries += [(flat[1:], TRIM_FACTOR), (flat[:-1], TRIM_FACTOR)]
    for fmt in rules if rules is not None else formats_for(countries):
        for candidate, scale in tries:
            fit = fmt.match(candidate)
            if fit is None:
                continue
            corrected, printed, factor = fit
            factor = round(factor * scale, 4)
            if best is None or factor > best.factor:
                best = Classification(fmt.name, printed, corrected, factor, fmt.country)
    if best is None:
        return Classification(UNFORMATTED, flat, flat, UNFORMATTED_FACTOR)
    return best
