"""The bottom layer: errors, config, signatures as data, data, distribution, progress, images, optimizers."""
