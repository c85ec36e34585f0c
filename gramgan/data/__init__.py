"""Training data: image sources (:mod:`~gramgan.data.sources`), HR/LR folder pairing
(:mod:`~gramgan.data.pairing`), LR synthesis (:mod:`~gramgan.data.lr`, with MATLAB-style resizing in
:mod:`~gramgan.data.resize`), augmentation, the datasets, the resumable sampler, the built-in sample
images and ``python -m gramgan.data.prepare``. Image files are read by :mod:`gramgan.images`.

Submodules are imported explicitly by their users; this package imports nothing eagerly.
"""
