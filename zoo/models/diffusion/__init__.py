"""The class-conditional diffusion model: its settings (config), the model that owns the networks
and their training (model), its samplers (samplers: guided DDIM, DPM-Solver++, the students'),
RePaint inpainting (inpainting) and the few-step students' distillation (students)."""

from zoo.models.diffusion.config import DiffusionConfig
from zoo.models.diffusion.model import Diffusion

__all__ = ["Diffusion", "DiffusionConfig"]
