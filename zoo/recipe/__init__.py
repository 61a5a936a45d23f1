"""The recipe flow every model shares (train → fit → choose → measure → export), on top of the
other layers; ``recipe.main(VAE)`` is all of recipes/vae.py."""

from zoo.recipe.flow import main
from zoo.recipe.run_config import RunConfig, parser

__all__ = ["RunConfig", "main", "parser"]
