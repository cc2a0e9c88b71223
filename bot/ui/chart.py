"""A per-day stacked bar chart (serving vs idle dollars) as PNG bytes, with no third-party code.

Small on purpose: an indexed-colour canvas, rectangles, a 5×7 bitmap font for the few characters
the axis labels need, and a PNG encoder on ``zlib`` + ``struct``. The output depends only on the
input, so the same week always yields the same bytes (and the same Slack file hash).

Colours: serving is blue at the bottom of each bar, idle amber on top; the message that carries
the chart says so, which keeps the picture legend-free.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from typing import NamedTuple

# Palette indices.
BACKGROUND, AXIS, GRID, SERVING, IDLE, TEXT = range(6)
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 255, 255),
    (136, 136, 136),
    (229, 229, 229),
    (59, 130, 246),
    (245, 158, 11),
    (51, 51, 51),
)

PLOT_HEIGHT = 120
BAR_WIDTH = 16
BAR_GAP = 6
_GLYPH_W, _GLYPH_H = 5, 7
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 8, 12, 14

# 5×7 glyphs, one string per row, '#' = ink. Only what axis labels use; others draw as blanks.
_FONT: dict[str, tuple[str, ...]] = {
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    "$": ("..#..", ".####", "#.#..", ".###.", "..#.#", "####.", "..#.."),
    ".": (".....", ".....", ".....", ".....", ".....", ".##..", ".##.."),
    ",": (".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."),
    "-": (".....", ".....", ".....", "#####", ".....", ".....", "....."),
    "/": ("....#", "...#.", "...#.", "..#..", ".#...", ".#...", "#...."),
    "k": ("#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."),
    "M": ("#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"),
}


class Bar(NamedTuple):
    """One day: a short label under the bar (e.g. the day of month) and its two stacked parts."""

    label: str
    serving: float
    idle: float


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at or above ``value`` (1 for nothing), for a clean axis."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= value * (1 - 1e-12):
            return m * exp
    return 10 * exp


def short_usd(value: float) -> str:
    """``$250``, ``$2.5k``, ``$1M``: axis labels that fit in a few glyphs."""
    for div, suffix in ((1e6, "M"), (1e3, "k"), (1, "")):
        if value >= div or div == 1:
            v = value / div
            text = f"{v:,.2f}".rstrip("0").rstrip(".")
            return f"${text}{suffix}"
    raise AssertionError("unreachable")


def bar_heights(bars: Sequence[Bar], plot_height: int, scale_max: float) -> list[tuple[int, int]]:
    """Pixel heights ``(serving, idle)`` of each stacked bar, proportional to dollars.

    The stack's total is rounded once, so serving + idle never drift from the total by rounding
    twice.
    """
    out = []
    for b in bars:
        serving, idle = max(0.0, b.serving), max(0.0, b.idle)
        total_px = round((serving + idle) / scale_max * plot_height) if scale_max > 0 else 0
        serving_px = min(total_px, round(serving / scale_max * plot_height)) if scale_max > 0 else 0
        out.append((serving_px, total_px - serving_px))
    return out


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray([BACKGROUND]) * (width * height)

    def rect(self, x: int, y: int, w: int, h: int, colour: int) -> None:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.width, x + w), min(self.height, y + h)
        if x1 <= x0:
            return
        row = bytes([colour]) * (x1 - x0)
        for yy in range(y0, y1):
            self.pixels[yy * self.width + x0 : yy * self.width + x1] = row

    def text(self, x: int, y: int, s: str, colour: int = TEXT) -> None:
        for i, ch in enumerate(s):
            glyph = _FONT.get(ch)
            if glyph is None:
                continue
            for gy, row in enumerate(glyph):
                for gx, ink in enumerate(row):
                    if ink == "#":
                        self.rect(x + i * (_GLYPH_W + 1) + gx, y + gy, 1, 1, colour)


def text_width(s: str) -> int:
    return len(s) * (_GLYPH_W + 1) - 1 if s else 0


def encode_png(width: int, height: int, pixels: bytes, palette: Sequence[tuple[int, int, int]], scale: int = 1) -> bytes:
    """An 8-bit indexed-colour PNG of ``pixels`` (one palette index per pixel), upscaled ``scale``×."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = bytearray()
    for y in range(height):
        row = pixels[y * width : (y + 1) * width]
        wide = bytes(b for b in row for _ in range(scale))
        for _ in range(scale):
            raw += b"\x00" + wide  # filter type 0: zlib alone compresses flat chart areas well
    ihdr = struct.pack(">IIBBBBB", width * scale, height * scale, 8, 3, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"PLTE", b"".join(bytes(c) for c in palette))
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


class ChartLayout(NamedTuple):
    width: int
    height: int
    plot_left: int
    plot_bottom: int  # y of the x axis (first row below the plot)
    scale_max: float


def layout(bars: Sequence[Bar]) -> ChartLayout:
    """Where the plot sits in the image and what the top of the axis is worth."""
    n = max(1, len(bars))
    width = _LEFT + BAR_GAP + n * (BAR_WIDTH + BAR_GAP) + _RIGHT
    height = _TOP + PLOT_HEIGHT + 1 + _BOTTOM
    peak = max((max(0.0, b.serving) + max(0.0, b.idle) for b in bars), default=0.0)
    return ChartLayout(width, height, _LEFT, _TOP + PLOT_HEIGHT, nice_ceiling(peak))


def bar_x(layout_: ChartLayout, index: int) -> int:
    """Left pixel column of bar ``index`` (unscaled)."""
    return layout_.plot_left + BAR_GAP + index * (BAR_WIDTH + BAR_GAP)


def render_stacked_bars(bars: Sequence[Bar], *, scale: int = 2) -> bytes:
    """PNG bytes of a stacked bar per day: serving (blue) below idle (amber), y axis in dollars."""
    lay = layout(bars)
    c = _Canvas(lay.width, lay.height)
    base = lay.plot_bottom

    # Gridlines at half and full scale, labelled; the axis itself at $0.
    for frac in (0.5, 1.0):
        y = base - round(PLOT_HEIGHT * frac)
        c.rect(lay.plot_left, y, lay.width - lay.plot_left - _RIGHT, 1, GRID)
        label = short_usd(lay.scale_max * frac)
        c.text(lay.plot_left - 4 - text_width(label), y - _GLYPH_H // 2, label)
    c.text(lay.plot_left - 4 - text_width("$0"), base - _GLYPH_H // 2, "$0")
    c.rect(lay.plot_left, _TOP, 1, PLOT_HEIGHT + 1, AXIS)
    c.rect(lay.plot_left, base, lay.width - lay.plot_left - _RIGHT, 1, AXIS)

    # Labels are drawn only where they fit; with many days every other one is skipped.
    widest = max((text_width(b.label) for b in bars), default=0)
    step = max(1, math.ceil((widest + 2) / (BAR_WIDTH + BAR_GAP)))
    for i, (bar, (serving_px, idle_px)) in enumerate(zip(bars, bar_heights(bars, PLOT_HEIGHT, lay.scale_max), strict=True)):
        x = bar_x(lay, i)
        c.rect(x, base - serving_px, BAR_WIDTH, serving_px, SERVING)
        c.rect(x, base - serving_px - idle_px, BAR_WIDTH, idle_px, IDLE)
        if i % step == 0 and bar.label:
            c.text(x + (BAR_WIDTH - text_width(bar.label)) // 2, base + 4, bar.label)
    return encode_png(lay.width, lay.height, bytes(c.pixels), PALETTE, scale)
