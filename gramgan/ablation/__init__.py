"""The loss-term ablation of Gram-GAN: ``python -m gramgan.ablation`` (see ``docs/ablation.md``).

Variants (psnr, esrgan, +texture, +dperc, +mask, gramgan, gramgan-global in the shipped presets)
train from one shared psnr-stage generator with the same seed, data and iterations, and are scored
and pictured side by side::

    from gramgan.ablation import load_plan, run_ablation
    results = run_ablation(load_plan(preset="tiny"), Path("runs/ablation-tiny"))
"""

from gramgan.ablation.experiment import run_ablation
from gramgan.ablation.plan import AblationError, AblationPlan, Variant, ablation_presets, load_plan

__all__ = ["AblationError", "AblationPlan", "Variant", "ablation_presets", "load_plan", "run_ablation"]
