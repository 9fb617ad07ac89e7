"""Weights as safetensors bytes (never pickle), verified against their SHA-256 before loading."""

from __future__ import annotations

import hashlib

from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn

from kit.errors import AppError


class WeightsRejected(AppError):
    def __init__(self, reason: str):
        super().__init__("weights_rejected", f"model weights refused: {reason}", status=500)


def weights_to_bytes(model: nn.Module) -> bytes:
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    return save_tensors(state)


def load_weights(model: nn.Module, data: bytes, *, expected_sha256: str) -> nn.Module:
    """Load verified weights into `model` (eval mode); refuse any hash or shape mismatch."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise WeightsRejected(f"hash {actual[:12]}… does not match the registered {expected_sha256[:12]}…")
    try:
        state = load_tensors(data)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as exc:
        raise WeightsRejected(f"they do not fit the architecture ({exc})") from None
    return model.eval()
