"""Drawing concepts: glyphs, clip art, digits, words and procedural textures, as small RGB images.

Every function takes a seeded ``random.Random`` so that the world is reproducible; nothing here
reads the network. Foregrounds are RGBA; :func:`compose` puts one on a background with the light
affine and colour jitter that turns one source drawing into several distinct images.
"""

from __future__ import annotations

import math
import random
import warnings
from functools import cache, lru_cache
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SIZE = 64
NOTO = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
SYMBOLA = Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
# Typefaces per pool, so that the rendered-words task reads a typeface no model trained on.
TRAIN_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
)
SAMPLE_FONTS = ("DejaVuSansCondensed.ttf", "DejaVuSansCondensed-Bold.ttf")
TASK_FONTS = (
    "DejaVuSerif.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSerifCondensed-Bold.ttf",
)


def fonts(wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The installed ones among ``wanted``; with only fonts-dejavu-core (CI), DejaVu Sans stands in."""
    found = tuple(f for f in wanted if (DEJAVU / f).exists())
    return found or ("DejaVuSans.ttf",)


def codes_to_text(codes: str) -> str:
    """``1F415-200D-1F9BA`` -> the emoji's characters."""
    return "".join(chr(int(part, 16)) for part in codes.split("-"))


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@lru_cache(maxsize=1)
def symbola_cmap() -> frozenset[int]:
    from fontTools.ttLib import TTFont

    return frozenset(TTFont(str(SYMBOLA)).getBestCmap())


def _crop_alpha(img: Image.Image) -> Image.Image | None:
    box = img.getchannel("A").getbbox()
    return img.crop(box) if box else None


def noto_glyph(codes: str) -> Image.Image | None:
    """The colour emoji, or None when Noto has no single glyph for the sequence."""
    text = codes_to_text(codes)
    font = _font(str(NOTO), 109)
    if font.getlength(text) > 140:  # unshaped sequence: several glyphs side by side
        return None
    canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((80, 80), text, font=font, embedded_color=True, anchor="mm")
    return _crop_alpha(canvas)


def symbola_glyph(codes: str, color: tuple[int, int, int] = (0, 0, 0)) -> Image.Image | None:
    """The monochrome Symbola drawing of a single-code-point emoji, or None."""
    points = [int(p, 16) for p in codes.split("-") if p.upper() != "FE0F"]
    if len(points) != 1 or points[0] not in symbola_cmap():
        return None
    canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text(
        (80, 80), chr(points[0]), font=_font(str(SYMBOLA), 100), fill=color + (255,), anchor="mm"
    )
    return _crop_alpha(canvas)


def text_glyph(text: str, font_file: str, color: tuple[int, int, int]) -> Image.Image | None:
    """A word or digit in a DejaVu typeface, cropped to its ink."""
    font = _font(str(DEJAVU / font_file), 48)
    left, top, right, bottom = font.getbbox(text)
    canvas = Image.new("RGBA", (int(right - left) + 8, int(bottom - top) + 8), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((4 - left, 4 - top), text, font=font, fill=color + (255,))
    return _crop_alpha(canvas)


MAX_SOURCE_PIXELS = 4_000_000  # a few openclipart PNGs are poster-sized; they are skipped


def open_rgba(path_or_file) -> Image.Image | None:
    with (
        warnings.catch_warnings()
    ):  # the size is checked right below, far under Pillow's bomb limit
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = Image.open(path_or_file)
    if img.width * img.height > MAX_SOURCE_PIXELS:
        return None
    img.load()
    return _crop_alpha(img.convert("RGBA"))


def light_color(rng: random.Random) -> tuple[int, int, int]:
    return tuple(rng.randint(200, 255) for _ in range(3))  # type: ignore[return-value]


def dark_color(rng: random.Random) -> tuple[int, int, int]:
    return tuple(rng.randint(0, 110) for _ in range(3))  # type: ignore[return-value]


def compose(
    fg: Image.Image | None, rng: random.Random, augment: bool = True, fill: float = 0.86
) -> Image.Image:
    """``fg`` centred on a SIZE x SIZE background; with ``augment``, jittered in scale, angle,
    position, background colour and saturation (the light augmentation one drawing can take)."""
    if fg is None:
        raise ValueError("nothing to compose: the drawing has no ink")
    bg = light_color(rng) if augment else (255, 255, 255)
    scale = fill * (rng.uniform(0.72, 1.0) if augment else 1.0)
    fg = fg.copy()
    if augment and rng.random() < 0.5:
        fg = fg.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BICUBIC, expand=True)
    w, h = fg.size
    factor = scale * SIZE / max(w, h)
    fg = fg.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (SIZE, SIZE), bg + (255,))
    slack_x, slack_y = SIZE - fg.width, SIZE - fg.height
    x = slack_x // 2 + (rng.randint(-slack_x // 3, slack_x // 3) if augment and slack_x > 2 else 0)
    y = slack_y // 2 + (rng.randint(-slack_y // 3, slack_y // 3) if augment and slack_y > 2 else 0)
    canvas.alpha_composite(fg, (x, y))
    out = canvas.convert("RGB")
    if augment and rng.random() < 0.15:
        out = out.convert("L").convert("RGB")
    return out


def sklearn_digit(pixels: np.ndarray, rng: random.Random, augment: bool = True) -> Image.Image:
    """An 8x8 handwritten digit (values 0..16) as dark ink on paper, upsampled like a low-res scan."""
    ink = np.asarray(dark_color(rng) if augment else (0, 0, 0), np.float32)
    paper = np.asarray(light_color(rng) if augment else (255, 255, 255), np.float32)
    small = pixels.reshape(8, 8, 1).astype(np.float32) / 16.0
    small = np.pad(small, ((1, 1), (1, 1), (0, 0)))
    rgb = (paper * (1 - small) + ink * small).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(rgb).resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    if augment and rng.random() < 0.5:
        img = img.rotate(
            rng.uniform(-10, 10),
            resample=Image.Resampling.BICUBIC,
            fillcolor=tuple(int(v) for v in paper),
        )
    return img


# --------------------------------------------------------------------------- procedural textures
PATTERNS = (
    "stripes",
    "checkerboard",
    "polka dots",
    "zigzag",
    "grid",
    "spiral",
    "crosshatch",
    "bricks",
    "honeycomb",
    "tartan",
)


def texture(pattern: str, rng: random.Random, style: str = "flat") -> Image.Image:
    """A SIZE x SIZE pattern drawn from coordinates. ``flat``: two clean colours (training and
    sample pools). ``worn``: another palette, thicker jittered strokes, blur and grain (the
    textures task), so the task is a different look of the same patterns."""
    n = SIZE * 2  # supersample, then downsize
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    period = rng.uniform(14, 30) * (1.3 if style == "worn" else 1.0)
    width = rng.uniform(0.3, 0.5) + (0.1 if style == "worn" else 0.0)
    if pattern == "stripes":
        mask = (u / period) % 1 < width
    elif pattern == "checkerboard":
        mask = (np.floor(u / period) + np.floor(v / period)) % 2 == 0
    elif pattern == "polka dots":
        cu, cv = (u / period) % 1 - 0.5, (v / period) % 1 - 0.5
        mask = cu**2 + cv**2 < (width * 0.6) ** 2
    elif pattern == "zigzag":
        tri = np.abs((u / period) % 1 - 0.5) * period
        mask = ((v + tri * 1.2) / (period * 0.6)) % 1 < width
    elif pattern == "grid":
        mask = ((u / period) % 1 < width * 0.35) | ((v / period) % 1 < width * 0.35)
    elif pattern == "spiral":
        cx, cy = n / 2 + rng.uniform(-10, 10), n / 2 + rng.uniform(-10, 10)
        r, t = np.hypot(x - cx, y - cy), np.arctan2(y - cy, x - cx)
        mask = ((r / period - t / (2 * math.pi)) % 1) < width
    elif pattern == "crosshatch":
        w = period * 0.45
        d1, d2 = (x + y) % w, (x - y) % w
        mask = (d1 < w * width * 0.4) | (d2 < w * width * 0.4)
    elif pattern == "bricks":
        row = np.floor(v / (period * 0.5))
        shifted = u + (row % 2) * period * 0.5
        mask = ~(((v / (period * 0.5)) % 1 < 0.12) | ((shifted / period) % 1 < 0.07))
    elif pattern == "honeycomb":
        s = period * 0.6
        q = (2 / 3 * u) / s
        r_ = (-1 / 3 * u + math.sqrt(3) / 3 * v) / s
        cq, cr = np.round(q), np.round(r_)
        dq, dr = q - cq, r_ - cr
        dist = np.maximum(np.maximum(np.abs(dq), np.abs(dr)), np.abs(dq + dr))
        mask = dist < 0.42
    elif pattern == "tartan":
        a = (u / period) % 1 < width
        b = (v / period) % 1 < width
        c1, c2, c3 = _palette(rng, style, 3)
        img = np.zeros((n, n, 3), np.float32) + np.asarray(c1, np.float32)
        img[a] = img[a] * 0.45 + np.asarray(c2, np.float32) * 0.55
        img[b] = img[b] * 0.45 + np.asarray(c3, np.float32) * 0.55
        return _finish(img, rng, style)
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    c1, c2 = _palette(rng, style, 2)
    img = np.where(mask[..., None], np.asarray(c1, np.float32), np.asarray(c2, np.float32))
    return _finish(img, rng, style)


def _palette(rng: random.Random, style: str, k: int) -> list[tuple[int, int, int]]:
    if style == "flat":  # saturated pairs
        base = [(rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255)) for _ in range(k)]
        base[0] = cast(
            "tuple[int, int, int]",
            tuple(
                min(255, c + 60) if i == rng.randint(0, 2) else c // 3
                for i, c in enumerate(base[0])
            ),
        )
        return base
    # worn: earthy tinted inks, alternating dark and light so the pattern stays visible
    tint = np.asarray([rng.randint(-35, 35) for _ in range(3)])
    levels = [rng.randint(50, 100) if i % 2 == 0 else rng.randint(160, 215) for i in range(k)]
    return [
        cast(
            "tuple[int, int, int]",
            tuple(int(c) for c in np.clip(level + tint + rng.randint(-15, 15), 0, 255)),
        )
        for level in levels
    ]


def _finish(img: np.ndarray, rng: random.Random, style: str) -> Image.Image:
    out = Image.fromarray(img.clip(0, 255).astype(np.uint8)).resize(
        (SIZE, SIZE), Image.Resampling.LANCZOS
    )
    if style == "worn":
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.0)))
        arr = np.asarray(out, np.float32) + np.random.default_rng(rng.randint(0, 2**31)).normal(
            0, 12, (SIZE, SIZE, 3)
        )
        out = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    return out
