"""Building blocks over tensors, apart from any model: networks, diffusion schedules and
samplers, corruptions, the parts over latent codes."""
