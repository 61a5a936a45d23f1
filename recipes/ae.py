"""Train, evaluate and export a convolutional autoencoder.

    python recipes/ae.py                       # built-in mnist5k
    python recipes/ae.py --anomaly-class 7     # train without 7s, then detect them
"""

from zoo import recipe
from zoo.models.autoencoder import Autoencoder, AutoencoderConfig


# Flags: the shared ones plus the autoencoder's own (recipes/dae.py adds the noise).
def make_flags(description):
    p = recipe.parser(description, epochs=20, batch_size=64, learning_rate=1e-3)
    p.add_argument("--latent-dim", type=recipe.positive_int, default=32, help="size of the latent code")
    p.add_argument("--loss", choices=("mse", "bce"), default="mse", help="reconstruction loss")
    p.add_argument("--anomaly-class", type=int, default=None,
                   help="leave this class out of training and report how well it is detected")
    return p


def config(args, info, **extra):
    return AutoencoderConfig(image_shape=info.image_shape, latent_dim=args.latent_dim, loss=args.loss,
                             anomaly_class=args.anomaly_class, num_classes=info.num_classes, seed=args.seed,
                             **extra)


flags = make_flags(__doc__.splitlines()[0])


# The model: an autoencoder sized to the dataset's images.
def build(args, info):
    return Autoencoder(config(args, info))


if __name__ == "__main__":
    recipe.run("ae", build, flags)
