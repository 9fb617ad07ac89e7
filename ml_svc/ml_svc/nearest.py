"""The training digits a version thinks an input resembles: its nearest neighbours in the version's penultimate layer
(what its last linear layer reads), by cosine similarity.

The index is built once per version when it is registered (`index_bytes`, from the digits it was trained on) and
stored as a blob with the version; an explanation then only embeds the one input and compares it with the index.
A layer wider than DIMENSIONS is reduced by a fixed random projection (Johnson-Lindenstrauss: cosine similarities
are kept to within a few hundredths), so an index holds at most LIMIT digits of DIMENSIONS float16 numbers and their
784 pixels, zlib-compressed in safetensors (no pickle): 1.2-1.8 MB for the default 4,500 training digits. Indexes
are verified against their SHA-256 like weights, and a few are remembered per process.
"""

from __future__ import annotations

import base64
import hashlib
import zlib

import numpy as np
import torch
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays
from torch import nn

from kit.errors import AppError
from ml_svc import peers
from ml_svc.preprocessing import to_model_input
from ml_svc.remembered import Remembered

LIMIT = 6000  # digits an index holds at most (an even sample of a larger training set)
DIMENSIONS = 128  # a wider penultimate layer is projected down to this many numbers
SHOWN = 5  # nearest examples an explanation shows
KEPT = 4  # indexes remembered per process
BATCH = 512
_kept: Remembered[str, dict[str, np.ndarray]] = Remembered(KEPT)


def _trunk(module: nn.Module) -> nn.Module:
    """Everything before the final linear layer (a view of the same weights: no hook on a module other requests
    share)."""
    if not (isinstance(module, nn.Sequential) and isinstance(module[-1], nn.Linear)):
        raise AppError("no_embedding", "this architecture does not end in a linear layer to find nearest examples with",
                       status=409)
    return module[:-1]


def embed(module: nn.Module, images: np.ndarray) -> np.ndarray:
    """Canonical uint8 images (N, 28, 28) as unit vectors in the version's penultimate layer (N, <= DIMENSIONS)."""
    trunk = _trunk(module).eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(images), BATCH):
            chunks.append(trunk(to_model_input(images[start:start + BATCH])).flatten(1).numpy())
    features = np.concatenate(chunks).astype(np.float32)
    if features.shape[1] > DIMENSIONS:
        features = features @ projection(features.shape[1])
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def projection(width: int) -> np.ndarray:
    """The fixed random projection of a `width`-wide layer to DIMENSIONS (the same for every version of that width)."""
    return (np.random.default_rng(width).standard_normal((width, DIMENSIONS)) / np.sqrt(DIMENSIONS)).astype(np.float32)


def index_bytes(module: nn.Module, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> bytes:
    """A version's index of the digits it was trained on (an even random sample of LIMIT if there are more)."""
    if len(labels) > LIMIT:
        kept = np.sort(np.random.default_rng(seed).choice(len(labels), size=LIMIT, replace=False))
        images, labels = images[kept], labels[kept]
    arrays = {"embeddings": embed(module, images).astype(np.float16),
              "labels": np.ascontiguousarray(labels, dtype=np.uint8),
              "images": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(labels), 784)}
    return zlib.compress(save_arrays(arrays), 6)


def _index(sha256: str) -> dict[str, np.ndarray]:
    remembered = _kept.get(sha256)
    if remembered is not None:
        return remembered
    data = peers.storage().get_blob(sha256)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise AppError("index_rejected", "the nearest-examples index does not match its registered hash", status=500)
    arrays = load_arrays(zlib.decompress(data))
    arrays["embeddings"] = arrays["embeddings"].astype(np.float32)
    return _kept.put(sha256, arrays)


def nearest(module: nn.Module, version: dict, image: np.ndarray, k: int = SHOWN) -> list[dict] | None:
    """The `k` training digits closest to a canonical 28x28 image, closest first: label, cosine similarity, and
    the digit itself (base64 of its 784 bytes, like a prediction's `image`). None for a version registered
    before indexes existed."""
    sha256 = version.get("nearest_index_sha256")
    if not sha256:
        return None
    index = _index(sha256)
    similarities = index["embeddings"] @ embed(module, image[None])[0]
    order = np.argsort(-similarities, kind="stable")[:k]
    return [{"label": int(index["labels"][i]), "similarity": round(float(similarities[i]), 4),
             "image": base64.b64encode(index["images"][i].tobytes()).decode()} for i in order]
