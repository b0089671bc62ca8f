"""examples/digits: twelve digits drawn as pen strokes given by hand below (not MNIST).

Varied sizes, aspects, positions, pen widths, colours and polarities, with paper grain and
uneven light, saved as PNG, JPEG and BMP: the images the README tries the `aezoo` command
on. `python examples/draw_digits.py` redraws them.
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

STROKES = {  # polylines in a unit box (x right, y down)
    0: [
        [
            (0.5, 0.05),
            (0.2, 0.2),
            (0.12, 0.5),
            (0.2, 0.8),
            (0.5, 0.95),
            (0.8, 0.8),
            (0.88, 0.5),
            (0.8, 0.2),
            (0.5, 0.05),
        ]
    ],
    1: [[(0.35, 0.2), (0.55, 0.05), (0.55, 0.95)]],
    2: [
        [
            (0.15, 0.25),
            (0.35, 0.07),
            (0.65, 0.07),
            (0.82, 0.28),
            (0.7, 0.5),
            (0.15, 0.93),
            (0.88, 0.93),
        ]
    ],
    3: [
        [
            (0.15, 0.12),
            (0.7, 0.08),
            (0.8, 0.3),
            (0.45, 0.47),
            (0.82, 0.65),
            (0.75, 0.9),
            (0.15, 0.92),
        ]
    ],
    4: [[(0.65, 0.95), (0.65, 0.05), (0.1, 0.65), (0.9, 0.65)]],
    5: [
        [(0.8, 0.07), (0.25, 0.07), (0.2, 0.45), (0.6, 0.4), (0.82, 0.62), (0.7, 0.9), (0.18, 0.9)]
    ],
    6: [
        [
            (0.7, 0.05),
            (0.3, 0.35),
            (0.18, 0.7),
            (0.35, 0.93),
            (0.68, 0.9),
            (0.8, 0.68),
            (0.6, 0.5),
            (0.25, 0.6),
        ]
    ],
    7: [[(0.1, 0.08), (0.9, 0.08), (0.4, 0.95)]],
    8: [
        [
            (0.5, 0.5),
            (0.2, 0.3),
            (0.5, 0.06),
            (0.8, 0.3),
            (0.5, 0.5),
            (0.15, 0.72),
            (0.5, 0.95),
            (0.85, 0.72),
            (0.5, 0.5),
        ]
    ],
    9: [[(0.78, 0.35), (0.5, 0.08), (0.2, 0.3), (0.45, 0.52), (0.78, 0.35), (0.7, 0.95)]],
}
rng = np.random.default_rng(2026)
# (digit, canvas WxH, box (x0,y0,w,h) as fractions, pen px, dark ink?, ink rgb, paper rgb, fmt)
CASES = [
    (0, (400, 300), (0.1, 0.1, 0.3, 0.6), 14, True, (20, 20, 90), (245, 240, 225), "png"),
    (1, (200, 200), (0.55, 0.3, 0.3, 0.6), 8, True, (0, 0, 0), (255, 255, 255), "png"),
    (2, (640, 480), (0.2, 0.15, 0.5, 0.7), 22, True, (30, 30, 30), (230, 225, 210), "jpg"),
    (3, (120, 160), (0.2, 0.1, 0.6, 0.8), 6, False, (255, 255, 255), (0, 0, 0), "png"),
    (4, (300, 300), (0.05, 0.05, 0.45, 0.45), 10, False, (240, 240, 80), (20, 40, 30), "bmp"),
    (5, (800, 600), (0.4, 0.3, 0.35, 0.55), 30, True, (150, 20, 20), (250, 250, 250), "jpg"),
    (6, (256, 256), (0.3, 0.25, 0.4, 0.5), 9, False, (200, 200, 200), (40, 40, 40), "png"),
    (7, (500, 700), (0.15, 0.2, 0.7, 0.6), 24, True, (10, 10, 10), (235, 235, 235), "png"),
    (8, (90, 90), (0.25, 0.1, 0.5, 0.8), 5, True, (60, 60, 60), (220, 220, 220), "bmp"),
    (9, (1000, 800), (0.6, 0.5, 0.3, 0.4), 28, False, (255, 255, 255), (25, 25, 60), "jpg"),
    (3, (300, 200), (0.1, 0.05, 0.3, 0.9), 12, True, (0, 0, 0), (255, 255, 240), "png"),
    (7, (240, 320), (0.35, 0.4, 0.5, 0.5), 10, False, (230, 230, 230), (10, 10, 10), "png"),
]
out = Path(__file__).parent / "digits"
out.mkdir(parents=True, exist_ok=True)
for i, (d, (w, h), (bx, by, bw, bh), pen, dark, ink, paper, fmt) in enumerate(CASES):
    if max(w, h) > 300:
        w, h, pen = w // 2, h // 2, max(3, pen // 2)
    img = Image.new("RGB", (w, h), paper)
    draw = ImageDraw.Draw(img)
    for line in STROKES[d]:
        pts = [
            (
                (bx + x * bw) * w + rng.normal(0, 0.01 * w),
                (by + y * bh) * h + rng.normal(0, 0.01 * h),
            )
            for x, y in line
        ]
        draw.line(pts, fill=ink, width=pen, joint="curve")
        for p in (pts[0], pts[-1]):
            draw.ellipse([p[0] - pen / 2, p[1] - pen / 2, p[0] + pen / 2, p[1] + pen / 2], fill=ink)
    img = img.filter(ImageFilter.GaussianBlur(max(0.6, pen / 10)))
    arr = np.asarray(img).astype(np.float32)
    arr += rng.normal(0, 3, arr.shape)  # paper grain / sensor noise
    shade = np.linspace(-15, 15, w)[None, :, None]  # uneven light
    arr = np.clip(arr + shade, 0, 255).astype(np.uint8)
    kind = "dark-on-light" if dark else "light-on-dark"
    name = out / f"{i:02d}-digit{d}-{kind}.{fmt}"
    Image.fromarray(arr).save(name, quality=85) if fmt == "jpg" else Image.fromarray(arr).save(name)
    print(name, name.stat().st_size)
