"""Packet copy into an output container without disturbing the packet.

A camera's packet goes to more than one output (the recorder, the live view); each output
needs its own timestamps, so each mux sets them and gives the packet its own back.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any


def mux_copy(out: Any, stream: Any, packet: Any, pts: int, dts: int, time_base: Fraction) -> None:
    saved = (packet.pts, packet.dts, packet.stream, packet.time_base)
    packet.pts, packet.dts = pts, dts
    packet.stream = stream
    packet.time_base = time_base
    try:
        out.mux(packet)
    finally:
        packet.stream = saved[2]
        packet.time_base = saved[3]
        packet.pts, packet.dts = saved[0], saved[1]
