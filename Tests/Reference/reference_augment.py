"""NumPy reference for the trainer's data augmentation (train --augment), written to Tests/Fixtures/augment.json.

Given one sample's draws (the runtime draws them from its counter-based stream; here they are chosen to cover the
edges), each case is the image after, in this order (torchvision's order: transforms on the [0, 1] image, then
erasing after Normalize):
  - crop:P   RandomCrop((H, W), padding=P), zero padding: pad P on every side, take the window at corner
             (P + dy, P + dx), dy, dx in [-P, P];
  - flip     RandomHorizontalFlip: mirror left-right when the draw says so;
  - jitter:J ColorJitter(brightness=J, contrast=J) on a float image: brightness clamp(b*x, 0, 1), contrast
             clamp(c*x + (1-c)*m, 0, 1) with m the mean of the grayscale (0.2989 R + 0.587 G + 0.114 B) for 3
             channels, else of all values; contrast first or brightness first as drawn;
  - cutout:S DeVries & Taylor's cutout: the square of side S whose corner is (cy - S//2, cx - S//2), clipped to
             the image, set to 0 on every channel.
float64 arithmetic on float32 inputs and factors (the runtime computes in float32; the test's tolerance is 1e-6).
The vectorized transforms are checked against scalar loops written from the definitions before anything is written.
Run from the repository root: python3 Tests/Reference/reference_augment.py"""
import json, os
import numpy as np

rng = np.random.RandomState(1919)


def crop(img, p, dy, dx):
    c, h, w = img.shape
    padded = np.zeros((c, h + 2 * p, w + 2 * p))
    padded[:, p:p + h, p:p + w] = img
    return padded[:, p + dy:p + dy + h, p + dx:p + dx + w]


def crop_loop(img, dy, dx):
    c, h, w = img.shape
    out = np.zeros_like(img)
    for k in range(c):
        for y in range(h):
            for x in range(w):
                sy, sx = y + dy, x + dx
                out[k, y, x] = img[k, sy, sx] if 0 <= sy < h and 0 <= sx < w else 0.0
    return out


def brightness(img, f): return np.clip(f * img, 0, 1)


def contrast(img, f):
    if img.shape[0] == 3:
        m = (0.2989 * img[0] + 0.587 * img[1] + 0.114 * img[2]).mean()
    else:
        m = img.mean()
    return np.clip(f * img + (1 - f) * m, 0, 1)


def cutout(img, s, cy, cx):
    c, h, w = img.shape
    out = img.copy()
    y0, x0 = cy - s // 2, cx - s // 2
    out[:, max(y0, 0):min(y0 + s, h), max(x0, 0):min(x0 + s, w)] = 0
    return out


def cutout_loop(img, s, cy, cx):
    out = img.copy()
    for k, y, x in np.ndindex(img.shape):
        if cy - s // 2 <= y < cy - s // 2 + s and cx - s // 2 <= x < cx - s // 2 + s:
            out[k, y, x] = 0
    return out


def augment(img, spec, d):
    out = img
    if spec["crop"]:
        out = crop(out, spec["crop"], d["dy"], d["dx"])
        assert np.array_equal(out, crop_loop(img, d["dy"], d["dx"]))
    if d["flip"]:
        out = out[:, :, ::-1]
    if spec["jitter"]:
        if d["contrast_first"]:
            out = brightness(contrast(out, d["contrast"]), d["brightness"])
        else:
            out = contrast(brightness(out, d["brightness"]), d["contrast"])
    if spec["cutout"]:
        before = out
        out = cutout(out, spec["cutout"], d["cy"], d["cx"])
        assert np.array_equal(out, cutout_loop(before, spec["cutout"], d["cy"], d["cx"]))
    return out


def f32(v): return float(np.float32(v))


# (name, shape, spec, draws); a draw left out is neutral. The crop offsets reach ±P, the cutout centres reach the
# corners (clipped squares), the jitter factors push values past 1 (clamped) and both orders occur.
CASES = [
    ("crop_only", (1, 6, 6), {"crop": 2}, {"dy": 2, "dx": -1}),
    ("crop_negative_corner", (1, 6, 6), {"crop": 2}, {"dy": -2, "dx": -2}),
    ("crop_whole_padding", (1, 5, 5), {"crop": 4}, {"dy": 4, "dx": 3}),
    ("flip_only", (1, 4, 5), {"flip": 1}, {"flip": 1}),
    ("flip_not_drawn", (1, 4, 5), {"flip": 1}, {"flip": 0}),
    ("crop_then_flip", (3, 5, 7), {"crop": 3, "flip": 1}, {"dy": -1, "dx": 3, "flip": 1}),
    ("cutout_centre", (1, 8, 8), {"cutout": 4}, {"cy": 4, "cx": 3}),
    ("cutout_corner_clipped", (2, 6, 7), {"cutout": 4}, {"cy": 0, "cx": 6}),
    ("cutout_odd_side", (1, 7, 7), {"cutout": 3}, {"cy": 6, "cx": 1}),
    ("jitter_gray_brightness_first", (1, 6, 6), {"jitter": 0.4}, {"contrast_first": 0, "brightness": 1.35, "contrast": 0.7}),
    ("jitter_gray_contrast_first", (1, 6, 6), {"jitter": 0.4}, {"contrast_first": 1, "brightness": 1.35, "contrast": 0.7}),
    ("jitter_rgb_contrast_up", (3, 4, 5), {"jitter": 0.5}, {"contrast_first": 0, "brightness": 0.6, "contrast": 1.45}),
    ("jitter_rgb_contrast_first", (3, 4, 5), {"jitter": 0.5}, {"contrast_first": 1, "brightness": 1.3, "contrast": 1.4}),
    ("all", (3, 8, 8), {"crop": 2, "flip": 1, "cutout": 4, "jitter": 0.2}, {"dy": 1, "dx": -2, "flip": 1, "cy": 7, "cx": 2,
                                                                           "contrast_first": 1, "brightness": 0.85, "contrast": 1.15}),
    ("all_mnist_size", (1, 28, 28), {"crop": 4, "flip": 1, "cutout": 8, "jitter": 0.2},
     {"dy": -3, "dx": 4, "flip": 1, "cy": 20, "cx": 25, "contrast_first": 0, "brightness": 1.18, "contrast": 0.83}),
]

cases = []
for name, shape, spec, draws in CASES:
    spec = {"crop": spec.get("crop", 0), "flip": spec.get("flip", 0), "cutout": spec.get("cutout", 0),
            "jitter": spec.get("jitter", 0.0)}
    d = {"dy": 0, "dx": 0, "flip": 0, "cy": 0, "cx": 0, "contrast_first": 0, "brightness": 1.0, "contrast": 1.0}
    d.update(draws)
    d["brightness"], d["contrast"] = f32(d["brightness"]), f32(d["contrast"])
    img = rng.uniform(0, 1, shape).astype(np.float32).astype(np.float64)
    out = augment(img, spec, d)
    cases.append({"name": name, "shape": list(shape), **spec, "draw": d,
                  "input": [float(v) for v in img.ravel()], "output": [float(v) for v in out.ravel()]})

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "augment.json")
text = '{"cases": [\n' + ",\n".join(json.dumps(c) for c in cases) + "\n]}\n"
assert json.loads(text)["cases"] == cases
with open(path, "w") as f:
    f.write(text)
print(f"wrote {path}: {len(cases)} cases")
