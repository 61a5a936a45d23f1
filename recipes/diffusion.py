"""Train, evaluate and export a class-conditional diffusion model (DDPM training, DDIM
sampling with autoguidance by a smaller guide network, EMA weights).

    python recipes/diffusion.py                  # CPU preset: mnist5k (its time: the card's provenance)
    python recipes/diffusion.py --preset full    # the quality preset, for a GPU
"""

from zoo import recipe
from zoo.models.diffusion import Diffusion

MODEL = Diffusion

if __name__ == "__main__":
    recipe.main(MODEL)
