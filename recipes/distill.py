"""Distil few-step students from the trained diffusion model and export it again with them:
the guided 20-step sampler (two U-Nets per step) learnt by one network, then halved
16 → 8 → 4 → 2 steps (docs/models/diffusion.md, "Few-step students").

    python recipes/diffusion.py        # the teacher, exported/diffusion
    python recipes/distill.py          # its students at 4 and 2 steps, into exported/diffusion

It is ``recipes/diffusion.py --preset distill``: every flag of that recipe works here too
(--resume, --strategy, --init-from another export, --students 8 4 2, ...).
"""

import sys

from zoo import recipe
from zoo.models.diffusion import Diffusion

MODEL = Diffusion

if __name__ == "__main__":
    recipe.main(MODEL, ["--preset", "distill", *sys.argv[1:]])
