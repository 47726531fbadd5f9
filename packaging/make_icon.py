"""Draw FaceKiosk's icon: ``python packaging/make_icon.py`` writes resources/icon.{png,ico,icns}.

A face in a camera's viewfinder with a green tick: what the kiosk does, legible at 16 px.
Drawn at 1024 px and scaled down (Pillow's shapes are not anti-aliased).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
S = 1024  # drawing size


def draw() -> Image.Image:
    img = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    # Background: a rounded square, dark blue fading to teal from top to bottom.
    top, bottom = (24, 54, 96), (18, 110, 130)
    grad = Image.new("RGBA", (S, S))
    gd = ImageDraw.Draw(grad)
    for y in range(S):
        t = y / (S - 1)
        gd.line(
            [(0, y), (S, y)],
            fill=(*[round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)], 255),
        )
    mask = Image.new("L", (S, S), 0)
    ImageDraw.Draw(mask).rounded_rectangle([32, 32, S - 32, S - 32], radius=200, fill=255)
    img.paste(grad, (0, 0), mask)

    # Viewfinder corners.
    white = (255, 255, 255, 255)
    w, m, arm = 44, 170, 170
    for cx, cy, dx, dy in (
        (m, m, 1, 1),
        (S - m, m, -1, 1),
        (m, S - m, 1, -1),
        (S - m, S - m, -1, -1),
    ):
        d.line([(cx, cy), (cx + dx * arm, cy)], fill=white, width=w)
        d.line([(cx, cy), (cx, cy + dy * arm)], fill=white, width=w)
        d.ellipse([cx - w / 2, cy - w / 2, cx + w / 2, cy + w / 2], fill=white)

    # The face: head outline, eyes, smile.
    face = (236, 244, 250, 255)
    cx, cy, r = S / 2, S / 2 - 10, 230
    d.ellipse([cx - r, cy - r * 1.12, cx + r, cy + r * 1.12], outline=face, width=40)
    for ex in (cx - 90, cx + 90):
        d.ellipse([ex - 34, cy - 80 - 34, ex + 34, cy - 80 + 34], fill=face)
    d.arc([cx - 120, cy - 20, cx + 120, cy + 150], start=20, end=160, fill=face, width=36)

    # The green tick badge, bottom right.
    bx, by, br = S - 250, S - 250, 150
    d.ellipse(
        [bx - br, by - br, bx + br, by + br],
        fill=(34, 197, 94, 255),
        outline=(255, 255, 255, 255),
        width=24,
    )
    d.line(
        [(bx - 70, by + 5), (bx - 15, by + 60), (bx + 80, by - 60)],
        fill=white,
        width=40,
        joint="curve",
    )
    return img


def main() -> None:
    big = draw()
    out = ROOT / "resources"
    icon = big.resize((256, 256), Image.LANCZOS)
    icon.save(out / "icon.png", optimize=True)
    big.resize((256, 256), Image.LANCZOS).save(
        out / "icon.ico",
        sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)],
    )
    big.resize((512, 512), Image.LANCZOS).save(out / "icon.icns")
    print(f"wrote {out / 'icon.png'}, icon.ico, icon.icns")


if __name__ == "__main__":
    main()
