"""Train, evaluate and export a class-conditional GAN (hinge loss, spectral norm,
projection discriminator, EMA generator).

    python recipes/cgan.py                  # built-in mnist5k
"""

from zoo import recipe
from zoo.models.cgan import CGAN

MODEL = CGAN

if __name__ == "__main__":
    recipe.main(MODEL)
