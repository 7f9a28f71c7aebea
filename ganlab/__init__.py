"""ganlab: CycleGAN variants, training, generation and metrics for histology images.

Pure PyTorch (plus NumPy/Pillow/scikit-image); imports no Django and no Celery.
Torch-free modules (``ganlab.data.demo``, ``ganlab.data.imageio``, ``ganlab.data.breakhis``,
``ganlab.recipes``) may be used by the web process; everything else imports torch.
"""

__version__ = "0.1.0"
