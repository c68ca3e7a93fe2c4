"""One plate read per vehicle: fuse the reads of the frames of one track.

    fusion = PlateFusion(countries=("RS", "EU"))
    for frame, box in track:                       # the frames a tracked vehicle was seen in
        for read in reader.read(frame, vehicle_box=box)[:1]:
            fusion.add(read)
    plate = fusion.result()                        # FusedPlate or None (nothing readable)

How: the reads are ranked best first (OCR confidence x crop quality), and only the best
``max_reads`` kept. The plate length is a weighted vote over the reads. Reads of that length
vote per character position directly; the others are aligned to the best read of that length
(edit-distance alignment, OCR confusions cheap) so that a dropped or extra character shifts
nothing. Each position takes the character with the most weight; the result goes through
the format rules again (which correct the remaining letter/digit confusions). Confidence:
format factor x mean share of the vote the winners got x a noisy-OR of the reads' OCR
confidences scaled by how much each read agrees with the result, so several agreeing frames
give more confidence than one, and disagreeing ones less.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from citywatch.analytics.plates.formats import (
    DIGIT_TO_LETTER,
    LETTER_TO_DIGIT,
    UNFORMATTED,
    classify,
    formats_for,
)
from citywatch.analytics.plates.reader import PlateRead

__all__ = [
    "FusedPlate",
    "PlateFusion",
    "ReadSchedule",
    "TrackPlate",
    "align",
    "fuse",
    "weighted_distance",
]

_CONFUSED = {frozenset(p) for p in [*DIGIT_TO_LETTER.items(), *LETTER_TO_DIGIT.items()]}


@dataclass(frozen=True, eq=False)
class FusedPlate:
    """The one read of a vehicle track. ``reads``: how many frames' reads were used;
    ``agreeing``: how many of them read exactly this; ``best``: the best-ranked read that
    agrees (its crop is the one to keep), or the best read overall."""

    text: str
    normalised: str
    format: str
    confidence: float
    reads: int
    agreeing: int
    best: PlateRead
    country: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "normalised": self.normalised,
            "format": self.format,
            "country": self.country,
            "confidence": self.confidence,
            "reads": self.reads,
            "agreeing": self.agreeing,
        }


def _sub_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    return 0.5 if frozenset((a, b)) in _CONFUSED else 1.0


def weighted_distance(a: str, b: str) -> float:
    """Edit distance between two normalised plates, an OCR confusion (O/0, B/8, ...)
    counting half a substitution."""
    prev = [float(j) for j in range(len(b) + 1)]
    for i, ca in enumerate(a, 1):
        cur = [float(i)]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1.0, cur[j - 1] + 1.0, prev[j - 1] + _sub_cost(ca, cb)))
        prev = cur
    return prev[-1]


def align(text: str, reference: str) -> list[str | None]:
    """``text`` laid onto the positions of ``reference`` (edit-distance alignment):
    one entry per reference position, None where ``text`` has no character there.
    Characters of ``text`` with no reference position are dropped."""
    n, m = len(text), len(reference)
    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = float(i)
    for j in range(1, m + 1):
        cost[0][j] = float(j)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(
                cost[i - 1][j - 1] + _sub_cost(text[i - 1], reference[j - 1]),
                cost[i - 1][j] + 1.0,  # extra character in text
                cost[i][j - 1] + 1.0,  # character missing from text
            )
    out: list[str | None] = [None] * m
    i, j = n, m
    while i > 0 and j > 0:
        if cost[i][j] == cost[i - 1][j - 1] + _sub_cost(text[i - 1], reference[j - 1]):
            out[j - 1] = text[i - 1]
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j] + 1.0:
            i -= 1
        else:
            j -= 1
    return out


def _weight(read: PlateRead) -> float:
    return max(read.ocr_confidence, 0.01) * (0.5 + 0.5 * min(1.0, read.quality * 2))


def fuse(
    reads: Iterable[PlateRead],
    countries: Iterable[str] | None = None,
    *,
    max_reads: int = 20,
) -> FusedPlate | None:
    """The fused read of several reads of one vehicle (see the module doc); None if none."""
    rules = formats_for(countries)
    ranked = sorted((r for r in reads if r.normalised), key=lambda r: (-_weight(r), -r.confidence))[
        :max_reads
    ]
    if not ranked:
        return None
    weights = [_weight(r) for r in ranked]
    length_votes: dict[int, float] = defaultdict(float)
    for r, w in zip(ranked, weights, strict=True):
        length_votes[len(r.normalised)] += w
    best_len = len(ranked[0].normalised)
    length = max(length_votes, key=lambda k: (length_votes[k], k == best_len))
    reference = next(r.normalised for r in ranked if len(r.normalised) == length)

    votes: list[dict[str, float]] = [defaultdict(float) for _ in range(length)]
    total = sum(weights)
    for r, w in zip(ranked, weights, strict=True):
        laid: Sequence[str | None] = (
            list(r.normalised) if len(r.normalised) == length else align(r.normalised, reference)
        )
        for pos, ch in enumerate(laid):
            if ch is not None:
                votes[pos][ch] += w
    winners = [max(v.items(), key=lambda kv: kv[1]) for v in votes]
    voted = "".join(ch for ch, _ in winners)
    agreement = sum(w for _, w in winners) / (total * length)

    cls = classify(voted, rules=rules)
    miss = 1.0
    agreeing = 0
    for r in ranked:
        laid = list(r.normalised) if len(r.normalised) == length else align(r.normalised, voted)
        match = sum(a == b for a, b in zip(laid, voted, strict=True)) / length
        miss *= 1.0 - r.ocr_confidence * match**2
        agreeing += r.normalised in (voted, cls.normalised)
    support = 1.0 - miss
    confidence = round(min(1.0, cls.factor * agreement * support), 4)
    best = next((r for r in ranked if r.normalised in (voted, cls.normalised)), ranked[0])
    return FusedPlate(
        text=cls.text,
        normalised=cls.normalised,
        format=cls.format,
        confidence=confidence,
        reads=len(ranked),
        agreeing=agreeing,
        best=best,
        country=cls.country,
    )


class PlateFusion:
    """Collects the reads of one vehicle track; ``result()`` fuses them (see ``fuse``)."""

    def __init__(self, countries: Iterable[str] | None = None, *, max_reads: int = 20) -> None:
        self.countries = list(countries) if countries is not None else None
        formats_for(self.countries)  # ValueError now for an unknown country
        self.max_reads = max_reads
        self._reads: list[PlateRead] = []

    def add(self, read: PlateRead) -> None:
        self._reads.append(read)
        if len(self._reads) > 4 * self.max_reads:  # keep memory bounded on long tracks
            self._reads.sort(key=lambda r: -_weight(r))
            del self._reads[self.max_reads :]

    def extend(self, reads: Iterable[PlateRead]) -> None:
        for r in reads:
            self.add(r)

    def __len__(self) -> int:
        return len(self._reads)

    def result(self) -> FusedPlate | None:
        return fuse(self._reads, self.countries, max_reads=self.max_reads)

    def settled(self, agreeing: int = 3, confidence: float = 0.8) -> bool:
        """Whether more frames would hardly change the result: it fits a format, at least
        ``agreeing`` reads read exactly it, and its confidence is at least ``confidence``
        (the vehicle path stops reading a track's plate then)."""
        if len(self._reads) < agreeing:
            return False
        fused = self.result()
        return (
            fused is not None
            and fused.format != UNFORMATTED
            and fused.agreeing >= agreeing
            and fused.confidence >= confidence
        )

    def reset(self) -> None:
        self._reads.clear()


@dataclass(frozen=True)
class ReadSchedule:
    """When to read the plate of a tracked vehicle (each read costs a detector pass and
    OCR): ``tries`` reads at least ``every_s`` apart; past those, only when the vehicle came
    closer (its box grew ``growth`` times over the largest box read so far: a better view,
    read at once), up to ``max_tries``; none once the fused read is settled
    (:meth:`PlateFusion.settled`). ``bench.plates_fusion`` measures it against reading
    every frame."""

    tries: int = 6
    every_s: float = 0.3
    growth: float = 1.3
    max_tries: int = 12


@dataclass
class TrackPlate:
    """The plate reads of one vehicle track and when they were taken."""

    fusion: PlateFusion = field(default_factory=PlateFusion)
    attempts: int = 0
    last_try: float = -1e9
    tried_area: float = 0.0  # the largest vehicle box read so far (any unit of area)
    settled: bool = False  # the fused read is sure: no more tries

    def due(self, area: float, ts: float, schedule: ReadSchedule) -> bool:
        """Whether to read the plate now, the vehicle's box being ``area`` at ``ts``."""
        if self.settled or self.attempts >= schedule.max_tries:
            return False
        grown = area >= self.tried_area * schedule.growth
        if self.attempts >= schedule.tries and not grown:
            return False
        return grown or ts - self.last_try >= schedule.every_s

    def tried(self, area: float, ts: float, read: PlateRead | None) -> None:
        """A read was tried now; ``read``: the best plate it found, if any."""
        self.attempts += 1
        self.last_try = ts
        self.tried_area = max(self.tried_area, area)
        if read is not None:
            self.fusion.add(read)
            self.settled = self.fusion.settled()
