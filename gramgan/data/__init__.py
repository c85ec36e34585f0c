"""Data: MATLAB-style resizing (``gramgan.data.resize``), datasets and candidate databases.

Submodules are imported explicitly by their users; this package imports nothing eagerly.
"""
