"""The dashboard's colours meet WCAG 2.x AA contrast on the backgrounds they are used on."""

from __future__ import annotations

import re

import pytest

from api.dashboard import STATIC_DIR

#: (foreground, background, minimum): 4.5 for text, 3 for large text and graphics
#: (focus rings, markers, status dots: WCAG 1.4.11 "non-text contrast").
PAIRS = [
    *[("text", bg, 4.5) for bg in ("bg", "panel", "raised", "map-land")],
    *[("muted", bg, 4.5) for bg in ("bg", "panel", "raised")],
    *[("error", bg, 4.5) for bg in ("panel", "raised")],
    ("critical", "panel", 4.5),  # "connection lost" is written in it
    # Dark text on coloured badges, pressed buttons, the primary button, the skip link.
    *[("on-color", bg, 4.5) for bg in ("critical", "warning", "info", "primary", "text", "focus")],
    *[("focus", bg, 3.0) for bg in ("bg", "panel", "raised", "map-land")],
    *[(mark, "map-land", 3.0) for mark in ("ok", "warning", "critical", "ack", "none")],
    *[(mark, "bg", 3.0) for mark in ("ok", "warning", "critical", "ack", "none", "primary")],
    ("map-edge", "map-land", 3.0),
    # Markers over the sea (islands, coastal entities), and the coast's edge against it.
    ("text", "map-sea", 4.5),
    ("focus", "map-sea", 3.0),
    *[(mark, "map-sea", 3.0) for mark in ("ok", "warning", "critical", "ack", "none")],
    ("map-edge", "map-sea", 3.0),
    ("muted", "panel", 3.0),  # chart axes and zone outlines
]


def palette() -> dict[str, str]:
    css = (STATIC_DIR / "style.css").read_text()
    root = re.search(r":root\s*\{(.*?)\}", css, re.S)
    assert root is not None, "style.css has no :root block"
    return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})\s*;", root.group(1)))


def luminance(hex_colour: str) -> float:
    """Relative luminance (WCAG 2.x) of #rrggbb."""
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_formula_matches_known_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#123456", "#123456") == pytest.approx(1.0)


@pytest.mark.parametrize(("fg", "bg", "minimum"), PAIRS, ids=[f"{f}-on-{b}" for f, b, _ in PAIRS])
def test_palette_pair_meets_wcag_aa(fg: str, bg: str, minimum: float) -> None:
    colours = palette()
    ratio = contrast(colours[fg], colours[bg])
    assert ratio >= minimum, f"--{fg} on --{bg}: {ratio:.2f}:1, needs {minimum}:1"
