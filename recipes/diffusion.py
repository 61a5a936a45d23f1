"""Train, evaluate and export a class-conditional diffusion model (DDPM training, DDIM
sampling with classifier-free guidance, EMA weights).

    python recipes/diffusion.py                  # CPU preset: mnist5k, under 30 minutes on 2 cores
    python recipes/diffusion.py --preset full    # the quality preset, for a GPU
"""

from zoo import recipe, schedules
from zoo.models.diffusion import PRESETS, Diffusion, DiffusionConfig

# XLA is off by default: on a 2-core CPU this U-Net trained faster without it (194 vs 160 images/s).
flags = recipe.parser(__doc__.splitlines()[0], epochs=None, batch_size=64, learning_rate=1e-3, jit_compile=False)
flags.add_argument("--preset", choices=PRESETS, default="cpu", help="network size and epochs: " + str(PRESETS))
flags.add_argument("--schedule", choices=schedules.SCHEDULES, default="cosine", help="noise schedule")
flags.add_argument("--prediction", choices=("eps", "v"), default=DiffusionConfig.prediction,
                   help="what the network predicts")
flags.add_argument("--min-snr-gamma", type=float, default=5.0,
                   help="Min-SNR-γ loss weighting (0: plain MSE over all timesteps)")
flags.add_argument("--sample-steps", type=recipe.positive_int, default=20,
                   help="DDIM steps of the exported generate/sample/inpaint signatures")
flags.add_argument("--guidance", type=float, default=1.5,
                   help="classifier-free guidance scale of the export (0: unconditional, 1: conditional); "
                        "higher: more accurate digits, less diversity (bench/diffusion_guidance.py)")
flags.add_argument("--ema-decay", type=float, default=0.999, help="decay of the weights' moving average")


# The model: a U-Net sized by the preset, driven by the chosen schedule.
def build(args, info):
    preset = PRESETS[args.preset]
    args.epochs = args.epochs or preset["epochs"]
    return Diffusion(DiffusionConfig(image_shape=info.image_shape, num_classes=info.num_classes,
                                     channels=preset["channels"], schedule=args.schedule, prediction=args.prediction,
                                     min_snr_gamma=args.min_snr_gamma,
                                     sample_steps=args.sample_steps, guidance=args.guidance,
                                     ema_decay=args.ema_decay, seed=args.seed))


if __name__ == "__main__":
    recipe.run("diffusion", build, flags)
