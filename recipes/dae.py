"""Train, evaluate and export a denoising autoencoder: corrupted inputs, clean targets.

    python recipes/dae.py                                   # gaussian σ=0.3 on mnist5k
    python recipes/dae.py --noise mask_patches --noise-level 0.25
"""

from zoo import recipe
from zoo.models.autoencoder import DenoisingAutoencoder

MODEL = DenoisingAutoencoder

if __name__ == "__main__":
    recipe.main(MODEL)
