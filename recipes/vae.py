"""Train, evaluate and export a convolutional VAE.

    python recipes/vae.py                      # built-in mnist5k, a few minutes on a CPU
    python recipes/vae.py --data mnist --epochs 30
"""

from zoo import recipe
from zoo.models.vae import VAE, VAEConfig

# Flags: the shared ones plus the VAE's own.
flags = recipe.parser(__doc__.splitlines()[0], epochs=30, batch_size=64, learning_rate=1e-3)
flags.add_argument("--latent-dim", type=recipe.positive_int, default=16, help="size of the latent space")
flags.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (1 = the true ELBO)")


# The model: a VAE sized to the dataset's images.
def build(args, info):
    return VAE(VAEConfig(image_shape=info.image_shape, latent_dim=args.latent_dim,
                         beta=args.beta, seed=args.seed))


if __name__ == "__main__":
    recipe.run("vae", build, flags)
