"""One fixed colour per learner, everywhere: the page, every figure and every export.
Plain strings (no plotly), so the view-model can attach colours to its rows."""
from __future__ import annotations

import zlib

#: One fixed colour per learner, everywhere (Okabe–Ito, colour-blind safe).
PALETTE: dict[str, str] = {
    "leap": "#D55E00",       # vermillion: the method the tool is built around
    "reptile": "#0072B2",    # blue
    "fomaml": "#009E73",     # bluish green
    "maml": "#CC79A7",       # reddish purple
    "multitask": "#E69F00",  # orange
    "random": "#4D4D4D",     # grey: the baseline
    # Leap's predefined ablation variants (trajviz.spec.learner_variants.PREDEFINED): distinct from the above
    "leap-nostab": "#56B4E9",         # sky blue
    "leap-noloss": "#8C510A",         # brown
    "leap-energy": "#762A83",         # purple
    "leap-energy-nostab": "#B2182B",  # dark red
    "leap-energy-noloss": "#1B7837",  # dark green
}
EXTRA_COLOURS = ("#56B4E9", "#8C510A", "#762A83", "#1B7837", "#B2182B", "#000000")


def learner_colour(name: str) -> str:
    """The learner's fixed colour: the palette's, or a stable pick for other names."""
    if name in PALETTE:
        return PALETTE[name]
    return EXTRA_COLOURS[zlib.crc32(name.encode()) % len(EXTRA_COLOURS)]
