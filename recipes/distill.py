"""Distil few-step students from the trained diffusion model and export it again with them:
the guided 20-step sampler (two U-Nets per step) learnt by one network, then halved
16 → 8 → 4 → 2 steps (docs/models/diffusion.md, "Few-step students").

    python recipes/distill.py          # the shipped teacher's students at 4 and 2 steps
    python recipes/distill.py --init-from runs/diffusion/<time>/diffusion   # your teacher's (recipes/diffusion.py)

The export (teacher and students) goes in the run's own folder, like every recipe's.

It is ``recipes/diffusion.py --preset distill``: every flag of that recipe works here too
(--resume, --strategy, --init-from another export, --students 8 4 2, ...).
"""

import sys

from zoo import recipe
from zoo.models.diffusion import Diffusion

MODEL = Diffusion

if __name__ == "__main__":
    recipe.main(MODEL, ["--preset", "distill", *sys.argv[1:]])
