"""The PNG bar chart: a valid file, proportional bars, the same bytes every time."""

from __future__ import annotations

import struct
import zlib

import pytest

from bot.ui.chart import (
    IDLE,
    PALETTE,
    PLOT_HEIGHT,
    SERVING,
    Bar,
    bar_heights,
    bar_x,
    layout,
    nice_ceiling,
    render_stacked_bars,
    short_usd,
)


def decode(png: bytes) -> tuple[int, int, list[bytes], bytes]:
    """Width, height, rows of palette indices and the palette, checking every CRC on the way."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        chunks.append((kind, data))
        pos += 12 + length
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour) == (8, 3)
    palette = next(d for k, d in chunks if k == b"PLTE")
    raw = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
    assert len(raw) == height * (width + 1)
    rows = [raw[y * (width + 1) : (y + 1) * (width + 1)] for y in range(height)]
    assert all(r[0] == 0 for r in rows)  # filter type None on every row
    return width, height, [r[1:] for r in rows], palette


BARS = [Bar("1", 10, 0), Bar("2", 20, 5), Bar("3", 0, 0), Bar("4", 40, 10), Bar("5", 0, 7.5)]


def test_valid_png_with_expected_size_and_palette():
    png = render_stacked_bars(BARS, scale=2)
    width, height, rows, palette = decode(png)
    lay = layout(BARS)
    assert (width, height) == (lay.width * 2, lay.height * 2)
    assert palette == b"".join(bytes(c) for c in PALETTE)
    assert all(max(r) < len(PALETTE) for r in rows)


def test_bar_heights_are_proportional():
    # Peak 50 → axis top 50; 120 px per 50 dollars.
    assert layout(BARS).scale_max == 50
    assert bar_heights(BARS, PLOT_HEIGHT, 50) == [(24, 0), (48, 12), (0, 0), (96, 24), (0, 18)]


def test_drawn_bars_match_the_heights():
    _, _, rows, _ = decode(render_stacked_bars(BARS, scale=1))
    lay = layout(BARS)
    for i, (serving_px, idle_px) in enumerate(bar_heights(BARS, PLOT_HEIGHT, lay.scale_max)):
        column = [row[bar_x(lay, i) + 3] for row in rows]
        assert column.count(SERVING) == serving_px
        assert column.count(IDLE) == idle_px
        # Serving sits on the axis, idle right above it.
        if serving_px:
            assert column[lay.plot_bottom - 1] == SERVING
        if idle_px:
            assert column[lay.plot_bottom - serving_px - 1] == IDLE


def test_deterministic_and_empty_input():
    assert render_stacked_bars(BARS) == render_stacked_bars(list(BARS))
    width, height, rows, _ = decode(render_stacked_bars([]))
    assert width > 0 and height > 0
    assert all(SERVING not in r and IDLE not in r for r in rows)


def test_a_month_of_days_fits():
    bars = [Bar(str(d), d * 1.5, 30 - d) for d in range(1, 32)]
    width, _, _, _ = decode(render_stacked_bars(bars, scale=1))
    assert width == layout(bars).width


@pytest.mark.parametrize(
    ("value", "nice"), [(0, 1), (0.3, 0.5), (1, 1), (1.01, 2), (2.2, 2.5), (47, 50), (100, 100), (1234, 2000)]
)
def test_nice_ceiling(value, nice):
    assert nice_ceiling(value) == pytest.approx(nice)


def test_short_usd_labels():
    assert [short_usd(v) for v in (0.25, 12.5, 250, 2500, 1_000_000)] == ["$0.25", "$12.5", "$250", "$2.5k", "$1M"]
