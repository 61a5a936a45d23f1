"""Train, evaluate and export a convolutional VAE.

    python recipes/vae.py                          # built-in mnist5k (its time: the card's provenance)
    python recipes/vae.py --data mnist --epochs 30
    python recipes/vae.py --help                   # every flag: the shared ones and VAEConfig's

The story, stage by stage, is in zoo/recipe/flow.py; the model (its config, its training step, its
signatures) in zoo/models/vae.py.
"""

from zoo import recipe
from zoo.models.vae import VAE

MODEL = VAE

if __name__ == "__main__":
    recipe.main(MODEL)
