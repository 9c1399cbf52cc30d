#!/usr/bin/env python3
"""Render a kasmm HTML report in headless Chromium and check the screenshot is not blank.

    python scripts/render_report_check.py report.html [--png shot.png]
    python scripts/render_report_check.py --state-dir state [--since 24h] [--profiles profiles]

The second form writes the report first (``kasmm report``). Chromium runs with a throw-away
profile, no background networking, and a host resolver that resolves nothing, so a page that
tried to fetch anything would render without it. The screenshot is decoded (Pillow when it is
importable, else a small zlib PNG decoder here; Pillow is not a kasmm dependency) and counted:
pixels that differ from the page background, and distinct colors.

Exit status: 0 the page rendered, 1 it looks blank, 2 usage or Chromium failure, 3 Chromium is
not installed (``apt-get install -y chromium`` on Debian).
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1280, 2400)
#: A pixel is ink when a channel differs from the page background by more than this.
INK_DELTA = 24
#: A pixel is colored (chart lines, markers, fills; text is grey) when its channels spread more.
COLOR_SPREAD = 48


class RenderError(RuntimeError):
    """Chromium did not produce a screenshot."""


def find_chromium() -> str | None:
    """``$CHROMIUM`` if set, else the first Chromium on ``PATH``."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(
    html: Path,
    png: Path,
    *,
    chromium: str | None = None,
    window: tuple[int, int] = WINDOW,
    timeout: float = 90.0,
) -> None:
    """Render ``html`` (a local file) to ``png`` with headless Chromium."""
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed")
    png = png.resolve()
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="kasmm-chromium-") as profile_dir:
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            # Resolve no host at all: the report must not need the network.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={profile_dir}",
            f"--screenshot={png}",
            f"--window-size={window[0]},{window[1]}",
            html.resolve().as_uri(),
        ]
        done = subprocess.run(
            cmd, cwd=profile_dir, capture_output=True, text=True, timeout=timeout, check=False
        )
    if done.returncode != 0 or not png.is_file() or png.stat().st_size == 0:
        tail = "\n".join((done.stderr or "").strip().splitlines()[-15:])
        raise RenderError(f"chromium exited {done.returncode} without a screenshot:\n{tail}")


# --- PNG decoding -------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """An 8-bit image as rows of RGB(A) bytes."""

    width: int
    height: int
    channels: int  #: 3 (RGB) or 4 (RGBA)
    rows: list[bytes]

    def pixels(self) -> list[tuple[int, ...]]:
        """Every pixel as an (r, g, b) tuple (alpha dropped)."""
        c = self.channels
        out: list[tuple[int, ...]] = []
        for row in self.rows:
            out.extend(zip(row[0::c], row[1::c], row[2::c], strict=True))
        return out


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data: bytes) -> Image:
    """Decode an 8-bit, non-interlaced RGB/RGBA/grey PNG (what Chromium writes) with zlib."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat = 8, bytearray()
    width = height = depth = color = interlace = -1
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace != 0:
        raise ValueError(f"unsupported PNG (bit depth {depth}, color type {color})")
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:
            line = bytearray((x + p) & 0xFF for x, p in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                upleft = prev[i - channels] if i >= channels else 0
                line[i] = (line[i] + _paeth(left, prev[i], upleft)) & 0xFF
        elif kind != 0:
            raise ValueError(f"bad PNG filter type {kind}")
        rows.append(bytes(line))
        prev = line
    if channels in (1, 2):  # grey: expand to RGB so the counting below is uniform
        rows = [bytes(v for g in row[::channels] for v in (g, g, g)) for row in rows]
        channels = 3
    return Image(width, height, channels, rows)


def load_png(path: Path, *, use_pillow: bool = True) -> Image:
    """Decode ``path``; with Pillow when it is importable (faster), else :func:`decode_png`."""
    if use_pillow:
        try:
            from PIL import Image as PILImage
        except ImportError:
            pass
        else:
            with PILImage.open(path) as img:
                rgb = img.convert("RGB")
                w, h = rgb.size
                buf = rgb.tobytes()
            return Image(w, h, 3, [buf[y * w * 3 : (y + 1) * w * 3] for y in range(h)])
    return decode_png(path.read_bytes())


@dataclass(frozen=True)
class Ink:
    """How much of a screenshot is not page background."""

    width: int
    height: int
    background: tuple[int, ...]
    ink_fraction: float  #: share of pixels that differ from the background
    colored: float  #: share of saturated pixels: the charts' lines and markers, not text
    colors: int  #: distinct colors (quantized to 4 bits per channel)
    bands: list[float]  #: ink fraction of 8 horizontal bands, top to bottom


def measure(image: Image) -> Ink:
    """Count the pixels that differ from the most common color (the page background)."""
    pixels = image.pixels()
    counts = Counter(pixels)
    background = counts.most_common(1)[0][0]
    br, bg, bb = background[0], background[1], background[2]
    ink = [
        abs(r - br) > INK_DELTA or abs(g - bg) > INK_DELTA or abs(b - bb) > INK_DELTA
        for r, g, b in pixels
    ]
    quantized = {(r >> 4, g >> 4, b >> 4) for r, g, b in counts}
    colored = sum(n for p, n in counts.items() if max(p) - min(p) > COLOR_SPREAD)
    band_rows = max(1, image.height // 8)
    per_row = image.width
    bands = []
    for k in range(8):
        chunk = ink[k * band_rows * per_row : (k + 1) * band_rows * per_row]
        bands.append(sum(chunk) / len(chunk) if chunk else 0.0)
    return Ink(
        image.width,
        image.height,
        background,
        sum(ink) / len(ink),
        colored / len(pixels),
        len(quantized),
        bands,
    )


def check(
    ink: Ink, *, min_ink: float = 0.02, min_colored: float = 0.003, min_colors: int = 8
) -> list[str]:
    """Why the screenshot looks blank or chartless (empty when it does not)."""
    problems = []
    if ink.ink_fraction < min_ink:
        problems.append(f"only {ink.ink_fraction:.2%} of the pixels differ from the background")
    if ink.colored < min_colored:
        problems.append(f"only {ink.colored:.2%} of the pixels are colored: no charts drawn?")
    if ink.colors < min_colors:
        problems.append(f"only {ink.colors} distinct colors (charts draw several)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", nargs="?", type=Path, help="an HTML report to render")
    parser.add_argument("--state-dir", type=Path, help="write the report from this state first")
    parser.add_argument("--since", default=None, help="with --state-dir: the report's --since")
    parser.add_argument("--profile", action="append", default=None, help="with --state-dir")
    parser.add_argument("--profiles", type=Path, default=None, help="with --state-dir")
    parser.add_argument("--png", type=Path, default=Path("report-screenshot.png"))
    parser.add_argument("--min-ink", type=float, default=0.02)
    parser.add_argument("--min-colored", type=float, default=0.003)
    parser.add_argument("--min-colors", type=int, default=8)
    parser.add_argument("--no-pillow", action="store_true", help="use the zlib decoder only")
    args = parser.parse_args(argv)

    if find_chromium() is None:
        print("chromium is not installed (Debian: apt-get install -y chromium)", file=sys.stderr)
        return 3
    report: Path | None = args.report
    if args.state_dir is not None:
        from kasmm.commands.report import report_command

        report = report or Path(tempfile.mkdtemp(prefix="kasmm-report-")) / "report.html"
        status = report_command(
            args.state_dir,
            report,
            profiles=args.profile,
            since=args.since,
            profiles_dir=args.profiles,
        )
        if status != 0:
            return 2
    if report is None or not report.is_file():
        parser.error("give an HTML report or --state-dir")
    try:
        screenshot(report, args.png)
    except (RenderError, subprocess.TimeoutExpired) as exc:
        print(f"render failed: {exc}", file=sys.stderr)
        return 2
    ink = measure(load_png(args.png, use_pillow=not args.no_pillow))
    bands = " ".join(f"{b:.0%}" for b in ink.bands)
    print(
        f"{args.png}: {ink.width}x{ink.height}, background {ink.background}, "
        f"{ink.ink_fraction:.1%} ink, {ink.colored:.2%} colored, {ink.colors} colors; "
        f"ink by band (top to bottom): {bands}"
    )
    problems = check(
        ink, min_ink=args.min_ink, min_colored=args.min_colored, min_colors=args.min_colors
    )
    for problem in problems:
        print(f"blank? {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
