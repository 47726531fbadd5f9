"""``python -m kiosk.pipeline prepare|embed|evaluate``: what ``dvc repro`` runs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from kiosk.errors import KioskError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.pipeline")
    parser.add_argument("stage", choices=["prepare", "embed", "evaluate"])
    parser.add_argument("--root", type=Path, default=Path(), help="registry working tree")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from kiosk.pipeline import stages
    from kiosk.pipeline.params import load_params

    try:
        params = load_params(args.root.resolve())
        result = getattr(stages, args.stage)(params)
    except KioskError as exc:
        print(f"kiosk.pipeline {args.stage}: {exc}", file=sys.stderr)
        return 1
    summary = {k: v for k, v in result.items() if k != "rejected"}
    print(f"{args.stage}: {json.dumps(summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
