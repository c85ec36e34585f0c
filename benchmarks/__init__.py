"""gramgan's benchmark scripts; run each as a module from the repository root, e.g.
``python -m benchmarks.gram_select --quick``. Their shared machinery is :mod:`gramgan.benchmarking`."""
