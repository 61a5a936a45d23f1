"""Train, evaluate and export a denoising autoencoder: corrupted inputs, clean targets.

    python recipes/dae.py                               # gaussian σ=0.3 on mnist5k
    python recipes/dae.py --noise mask_patches --noise-level 0.25
"""

from ae import config, make_flags

from zoo import corruption, recipe
from zoo.models.autoencoder import Autoencoder

# Flags: the autoencoder's plus the corruption applied in training.
flags = make_flags(__doc__.splitlines()[0])
flags.add_argument("--noise", choices=corruption.KINDS, default="gaussian", help="corruption applied in training")
flags.add_argument("--noise-level", type=float, default=0.3,
                   help="σ for gaussian; the rate (0..1) for salt_pepper, mask_pixels, mask_patches")
flags.add_argument("--patch-size", type=recipe.positive_int, default=4, help="patch side for mask_patches")


# The model: the same autoencoder, corrupting its inputs while it trains.
def build(args, info):
    return Autoencoder(config(args, info, noise=args.noise, noise_level=args.noise_level,
                              patch_size=args.patch_size))


if __name__ == "__main__":
    recipe.run("dae", build, flags)
