"""Checks a picture written by `TRAINER filters` against the filter grid computed here with NumPy from the weights,
or one written by `TRAINER saliency` or `maximize` against its row of tiles.

    python3 Tests/Reference/png_check.py OUT.png W.safetensors NAME C H W
    python3 Tests/Reference/png_check.py --tiles OUT.png C H W KIND:FILE.npy[:ROW]…

--tiles: KIND is `image` (the row, (C, H, W), drawn as in filters but zoom = max(1, 112 // max(H, W)): one gray tile
per channel, or one RGB tile for C = 3, gray in an RGB picture repeated in the three channels) or `heat` (max over
channels of |row|, scaled by its maximum t = v / max, channel c = round(255 * clamp(3t − c, 0, 1)): "hot"); the
picture is RGB when it has a heat map or C = 3, and has the same white separators.

NAME is the weight drawn (a Conv2d weight (n, C, H, W), or a Linear weight (n, C*H*W) whose rows are read as
C x H x W images). The PNG is decoded here (chunks and their CRCs, zlib, the five row filters), independently of
libpng. The expected image, from docs/trainer.md:
  - each filter normalized on its own: round-half-even(255 * (x - min) / (max - min)), 128 when max == min;
  - each weight a zoom x zoom block, zoom = max(1, 28 // max(H, W));
  - C of 1 or 3: one gray or RGB tile per filter, ceil(sqrt(n)) columns, filled row by row; otherwise one row per
    filter and one gray tile per channel;
  - a 1-pixel white (255) line between tiles and around the grid.
Exits 0 when every pixel matches, else prints the first differences and exits 1.
"""
import json
import math
import struct
import sys
import zlib

import numpy as np


def read_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    at, idat, header = 8, b"", None
    while at < len(data):
        (n,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + n]
        (crc,) = struct.unpack(">I", data[at + 8 + n:at + 12 + n])
        assert zlib.crc32(kind + body) == crc, "chunk %r: CRC mismatch" % kind
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
        if kind == b"IEND":
            break
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (0, 2) and interlace == 0, "expected 8-bit gray or RGB, not interlaced: %s" % (header,)
    ch = 1 if color == 0 else 3
    raw, stride = zlib.decompress(idat), width * ch
    out = np.zeros((height, stride), dtype=np.int64)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], np.frombuffer(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)], dtype=np.uint8).astype(np.int64)
        row = np.zeros(stride, dtype=np.int64)
        for x in range(stride):
            a = row[x - ch] if x >= ch else 0
            b, c = prev[x], (prev[x - ch] if x >= ch else 0)
            if kind == 0: pred = 0
            elif kind == 1: pred = a
            elif kind == 2: pred = b
            elif kind == 3: pred = (a + b) // 2
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            else: raise AssertionError("row %d: filter type %d" % (y, kind))
            row[x] = (line[x] + pred) & 0xFF
        out[y], prev = row, row
    return out.reshape(height, width, ch)


def read_safetensors(path, name):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    entry = json.loads(data[8:8 + n])[name]
    begin, end = entry["data_offsets"]
    return np.frombuffer(data[8 + n + begin:8 + n + end], dtype="<f4").reshape(entry["shape"])


def expected(w):
    n, C, H, W = w.shape
    zoom = max(1, 28 // max(H, W))
    color = C in (1, 3)
    cols = math.ceil(math.sqrt(n)) if color else C
    rows = math.ceil(n / cols) if color else n
    th, tw = H * zoom, W * zoom
    img = np.full((rows * (th + 1) + 1, cols * (tw + 1) + 1, 3 if C == 3 else 1), 255, dtype=np.int64)
    for f in range(n):
        x = w[f].astype(np.float64)
        lo, hi = x.min(), x.max()
        levels = np.rint(255.0 * (x - lo) / (hi - lo)).astype(np.int64) if hi > lo else np.full(x.shape, 128)
        big = levels.repeat(zoom, axis=1).repeat(zoom, axis=2)  # (C, th, tw)
        for c in range(C):
            r, col = (f // cols, f % cols) if color else (f, c)
            y0, x0 = 1 + r * (th + 1), 1 + col * (tw + 1)
            img[y0:y0 + th, x0:x0 + tw, c if C == 3 else 0] = big[c]
    return img


def expected_tiles(C, H, W, specs):
    zoom = max(1, 112 // max(H, W))
    heat = any(k == "heat" for k, _ in specs)
    ch = 3 if heat or C == 3 else 1
    tiles = []
    for kind, v in specs:
        v = v.reshape(C, H, W)
        if kind == "heat":
            h = np.abs(v).max(axis=0).astype(np.float64)
            hi = h.max()
            t = h / hi if hi > 0 else np.zeros_like(h)
            tiles.append(np.stack([np.rint(255.0 * np.clip(3 * t - c, 0, 1)) for c in range(3)], axis=-1))
            continue
        x = v.astype(np.float64)
        lo, hi = x.min(), x.max()
        levels = np.rint(255.0 * (x - lo) / (hi - lo)) if hi > lo else np.full(x.shape, 128.0)
        if C == 3:
            tiles.append(np.moveaxis(levels, 0, -1))
        else:
            tiles += [np.repeat(levels[c][..., None], ch, axis=-1) for c in range(C)]
    img = np.full((H * zoom + 2, len(tiles) * (W * zoom + 1) + 1, ch), 255, dtype=np.int64)
    for i, t in enumerate(tiles):
        x0 = 1 + i * (W * zoom + 1)
        img[1:1 + H * zoom, x0:x0 + W * zoom] = t.repeat(zoom, axis=0).repeat(zoom, axis=1).astype(np.int64)
    return img


def compare(png, got, want, what):
    if got.shape != want.shape:
        print("image %s, expected %s" % (got.shape, want.shape))
        sys.exit(1)
    bad = np.argwhere(got != want)
    if len(bad):
        print("%d pixels differ; first (y, x, channel, got, expected): %s" % (len(bad), [(*map(int, p), int(got[tuple(p)]), int(want[tuple(p)])) for p in bad[:5]]))
        sys.exit(1)
    print("%s: %d x %d x %d, all pixels match %s" % (png.split("/")[-1], got.shape[1], got.shape[0], got.shape[2], what))


def main_tiles(args):
    png, (C, H, W) = args[0], (int(v) for v in args[1:4])
    specs = []
    for spec in args[4:]:
        kind, path, *row = spec.split(":")
        a = np.load(path)
        specs.append((kind, a.reshape(a.shape[0], -1)[int(row[0]) if row else 0]))
    compare(png, read_png(png), expected_tiles(C, H, W, specs), "the tiles %s" % [k for k, _ in specs])


def main():
    if sys.argv[1] == "--tiles":
        return main_tiles(sys.argv[2:])
    png, weights, name = sys.argv[1:4]
    C, H, W = (int(v) for v in sys.argv[4:7])
    w = read_safetensors(weights, name)
    w = w.reshape(w.shape[0], C, H, W)
    compare(png, read_png(png), expected(w), "the grid of %d filters %s" % (w.shape[0], list(w.shape[1:])))


if __name__ == "__main__":
    main()
