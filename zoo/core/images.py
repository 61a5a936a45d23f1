"""Image grids as PNG files (sample grids, reconstructions, interpolations)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def grid(images, rows, pad=2):
    """[N, H, W, C] in [0, 1] → one [rows·(H+pad)+pad, cols·(W+pad)+pad, C] image, row-major."""
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    cols = -(-n // rows)
    out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        out[y:y + h, x:x + w] = image
    return out


def save_png(image, path, scale=2):
    """Write an [H, W, C] image in [0, 1] atomically (temporary file, then rename)."""
    pixels = (np.clip(np.asarray(image), 0, 1) * 255).round().astype(np.uint8)
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    picture = Image.fromarray(pixels)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    tmp = f"{path}.tmp-{os.getpid()}"
    picture.save(tmp, format="PNG")
    os.replace(tmp, path)
