"""The gallery pipeline that ``dvc repro`` runs in a registry: prepare, embed, evaluate (no Qt).

Each stage is ``python -m kiosk.pipeline <stage>``, run in the registry's root
(where ``dvc.yaml`` and ``params.yaml`` are); see :mod:`kiosk.pipeline.templates`.
"""
