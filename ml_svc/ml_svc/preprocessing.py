"""Canonical 28x28 images (kit/preprocessing.py makes them) as the models' input tensor."""

from __future__ import annotations

import numpy as np
import torch

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def to_model_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Canonical uint8 images (N, 28, 28) -> normalised float tensor (N, 1, 28, 28)."""
    tensor = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True)) if isinstance(images, np.ndarray) else images
    return ((tensor.float() / 255.0 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)
