"""Image I/O, demo tiles and datasets.

``imageio`` and ``demo`` are torch-free so the web process can import them.
"""
