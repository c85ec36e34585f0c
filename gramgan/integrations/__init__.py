"""Integrations with other training frameworks; each lives in its own subpackage and is imported only on
request, so that ``import gramgan`` never imports a framework.

- :mod:`gramgan.integrations.basicsr`: the texture loss, the discriminator with taps and the Gram-GAN
  model registered in BasicSR 1.4's registries (docs/basicsr.md; ``pip install "gramgan[basicsr]"``).
"""
