"""Train, evaluate and export a class-conditional GAN (hinge loss, spectral norm,
projection discriminator, EMA generator).

    python recipes/cgan.py                  # built-in mnist5k, about 15 minutes on a 2-core CPU
"""

from zoo import recipe
from zoo.models.cgan import LOSSES, CGAN, CGANConfig

# Flags: the shared ones (--learning-rate is the generator's) plus the GAN's own.
# XLA is off by default: on a 2-core CPU it made this step slower (190 vs 144 ms).
flags = recipe.parser(__doc__.splitlines()[0], epochs=60, batch_size=64, learning_rate=2e-4, jit_compile=False)
flags.add_argument("--d-learning-rate", type=recipe.positive_float, default=2e-4,
                   help="discriminator Adam learning rate")
flags.add_argument("--loss", choices=LOSSES, default="hinge", help="adversarial loss")
flags.add_argument("--noise-dim", type=recipe.positive_int, default=64, help="size of the generator's noise")
flags.add_argument("--ema-decay", type=float, default=0.999,
                   help="decay of the generator weights' moving average used for evaluation and export")


# The model: generator and discriminator sized to the dataset.
def build(args, info):
    return CGAN(CGANConfig(image_shape=info.image_shape, num_classes=info.num_classes, noise_dim=args.noise_dim,
                           loss=args.loss, ema_decay=args.ema_decay, d_learning_rate=args.d_learning_rate,
                           seed=args.seed))


if __name__ == "__main__":
    recipe.run("cgan", build, flags)
