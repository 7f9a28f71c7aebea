"""A short hue-discrimination screen, generated: standard colour-vision plates (Ishihara, the
Farnsworth-Munsell tests) cannot be shipped, and H&E judgments depend on telling close pinks and
purples apart. This is NOT a clinical colour-vision test: it checks that this rater, on this screen,
tells apart hues as close as the stains' shades.

Each plate shows four patches of one H&E-like hue (purple-pink, 280°-340°, fixed saturation and
lightness); one of them differs in hue by a step that shrinks from plate to plate. The rater picks
the odd one; the plates and the odd positions are drawn from the rater's own seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Hue differences (degrees) of the plates, easiest first.
HUE_STEPS = (30, 22, 16, 12, 9, 7, 5, 4)
#: Plates to answer right to pass.
PASS_MARK = 6
PATCHES = 4
SATURATION, LIGHTNESS = 45, 68


@dataclass(frozen=True)
class Plate:
    colours: tuple[str, ...]  # CSS colours of the patches, in order
    odd: int  # index of the patch whose hue differs
    hue_step: float


def colour_plates(*, seed: int) -> list[Plate]:
    """The screen's plates for one rater (same seed, same plates)."""
    rng = np.random.default_rng([seed, 0xC0105])
    plates = []
    for step in HUE_STEPS:
        base = float(rng.uniform(285, 335))
        odd = int(rng.integers(PATCHES))
        hue = base + step * (1 if rng.random() < 0.5 else -1)
        colours = tuple(
            f"hsl({hue if i == odd else base:.1f}, {SATURATION}%, {LIGHTNESS}%)" for i in range(PATCHES)
        )
        plates.append(Plate(colours=colours, odd=odd, hue_step=step))
    return plates


def colour_screen_score(*, plates: list[Plate], answers: list[int | None]) -> int:
    """How many plates were answered right (an unanswered plate counts as wrong)."""
    if len(answers) != len(plates):
        raise ValueError(f"expected {len(plates)} answers, got {len(answers)}")
    return sum(answer == plate.odd for plate, answer in zip(plates, answers, strict=True))
