"""Networks of the CycleGAN family, the encoder registry and offline pretrained weights.

Paper names (Zhu et al. 2017) -> reference names: G = ``G_A`` (X->Y), F = ``G_B`` (Y->X),
D_Y = ``D_A``, D_X = ``D_B``. See :mod:`ganlab.models.cyclegan` for the presets.
"""

from __future__ import annotations

from ganlab.models.cyclegan import (
    CLASS_NAMES,
    PAPER_NAMES,
    PRESETS,
    CycleGAN,
    CycleGANConfig,
    build_discriminator,
    build_generator,
    preset_config,
)
from ganlab.models.encoders import Encoder, get_encoder, list_encoders, register_encoder
from ganlab.models.networks import (
    NLayerDiscriminator,
    ResnetGenerator,
    SemiSupervisedPatchDiscriminator,
)
from ganlab.models.transfer import EncoderClassifier, EncoderDiscriminator, EncoderUNetGenerator
from ganlab.models.weights import MissingWeightsError, WeightsChecksumError

__all__ = [
    "CLASS_NAMES",
    "PAPER_NAMES",
    "PRESETS",
    "CycleGAN",
    "CycleGANConfig",
    "Encoder",
    "EncoderClassifier",
    "EncoderDiscriminator",
    "EncoderUNetGenerator",
    "MissingWeightsError",
    "NLayerDiscriminator",
    "ResnetGenerator",
    "SemiSupervisedPatchDiscriminator",
    "WeightsChecksumError",
    "build_discriminator",
    "build_generator",
    "get_encoder",
    "list_encoders",
    "preset_config",
    "register_encoder",
]
