"""Random-init FaceNet weights for tests and screenshots (the real ones cannot be downloaded).

They have the release's architecture and file format and go through the real loading
code; they are never presented as a model that recognises anyone.
"""

from __future__ import annotations

from pathlib import Path


def write_random_facenet(path: Path) -> Path:
    """Save an InceptionResnetV1 state dict with seeded random weights to ``path``."""
    import torch
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(1234)
    model = InceptionResnetV1(pretrained=None, classify=False)
    # Untrained BatchNorm statistics make every output the same vector. Calibrate them on
    # smooth random images (as training would), so different faces get different embeddings.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    noise = torch.rand(24, 3, 160, 160, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        model(
            torch.nn.functional.interpolate(
                torch.nn.functional.avg_pool2d(noise, 8), size=160, mode="bilinear"
            )
        )
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path
