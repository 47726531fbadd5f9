"""Choosing the torch device from the ``recognition.device`` setting."""

from __future__ import annotations

import torch

from kiosk.errors import ModelLoadError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(
            "recognition.device is 'cuda' but torch sees no CUDA GPU; set it to 'auto' or "
            "'cpu', or install a CUDA build of torch and the NVIDIA driver."
        )
    return torch.device(name)
