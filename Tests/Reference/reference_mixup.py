"""NumPy reference for mixup and CutMix (train --mixup, --cutmix), written to Tests/Fixtures/mixup.json.

Given a batch's draws (the runtime draws them from its per-step stream; here they are fixed), the cases are:
  - "loss":   logits z (n, k), labels y, λ: the mixed loss λ·CE(z, y) + (1−λ)·CE(z, y[::-1]) (each the batch mean of
              −log softmax(z)[i, label]), computed term by term, and its gradient (softmax(z) − T)/n where
              T = λ·onehot(y) + (1−λ)·onehot(y[::-1]); the gradient is also checked against central differences here.
  - "mixup":  a batch x (n, d), labels, λ: x̃ᵢ = λ·xᵢ + (1−λ)·x_{n−1−i} and the soft targets T.
  - "cutmix": an image batch (n, C, H, W), labels, λ and the box centre (cy, cx): timm's rand_bbox (sides
              ⌊H·√(1−λ)⌋, ⌊W·√(1−λ)⌋, half-sides rounded down each way from the centre, clipped), the box of
              x_{n−1−i} pasted into xᵢ, λ recomputed as 1 − box area/(H·W), and the soft targets with it.
Pairing is with the flipped batch (sample i with n−1−i), as timm's Mixup. float64 arithmetic on float32 inputs.
Run from the repository root: python3 Tests/Reference/reference_mixup.py"""
import json, os
import numpy as np

rng = np.random.RandomState(1919 + 19)


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def ce(z, y):
    return -log_softmax(z)[np.arange(len(y)), y].mean()


def soft_targets(y, lam, k):
    t = np.zeros((len(y), k))
    t[np.arange(len(y)), y] += lam
    t[np.arange(len(y)), y[::-1]] += 1 - lam
    return t


def loss_case(name, n, k, lam):
    z, y = f32(rng.uniform(-3, 3, (n, k))), rng.randint(0, k, n)
    loss = lam * ce(z, y) + (1 - lam) * ce(z, y[::-1])
    t = soft_targets(y, lam, k)
    grad = (np.exp(log_softmax(z)) - t) / n
    h, fd = 1e-6, np.zeros_like(z)
    for i in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[i] += h
        down[i] -= h
        fd[i] = ((lam * ce(up, y) + (1 - lam) * ce(up, y[::-1])) - (lam * ce(down, y) + (1 - lam) * ce(down, y[::-1]))) / (2 * h)
    assert np.allclose(fd, grad, rtol=1e-6, atol=1e-9)
    return {"name": name, "kind": "loss", "n": n, "k": k, "lam": lam, "z": z.ravel().tolist(), "y": y.tolist(),
            "loss": loss, "grad": grad.ravel().tolist()}


def mixup_case(name, n, d, k, lam):
    x, y = f32(rng.uniform(-1, 1, (n, d))), rng.randint(0, k, n)
    out = lam * x + (1 - lam) * x[::-1]
    return {"name": name, "kind": "mixup", "n": n, "d": d, "k": k, "lam": lam, "x": x.ravel().tolist(),
            "y": y.tolist(), "out": out.ravel().tolist(), "soft": soft_targets(y, lam, k).ravel().tolist()}


def rand_bbox(h, w, lam, cy, cx):
    r = np.sqrt(1 - lam)
    ch, cw = int(h * r), int(w * r)
    y0, y1 = np.clip(cy - ch // 2, 0, h), np.clip(cy + ch // 2, 0, h)
    x0, x1 = np.clip(cx - cw // 2, 0, w), np.clip(cx + cw // 2, 0, w)
    return int(y0), int(y1), int(x0), int(x1)


def cutmix_case(name, n, c, h, w, k, lam, cy, cx):
    x, y = f32(rng.uniform(0, 1, (n, c, h, w))), rng.randint(0, k, n)
    y0, y1, x0, x1 = rand_bbox(h, w, lam, cy, cx)
    out = x.copy()
    out[:, :, y0:y1, x0:x1] = x[::-1, :, y0:y1, x0:x1]
    lam_box = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    # the same box written with loops, from the definition
    loop = x.copy()
    for i in range(n):
        for ch_ in range(c):
            for r in range(h):
                for q in range(w):
                    if y0 <= r < y1 and x0 <= q < x1:
                        loop[i, ch_, r, q] = x[n - 1 - i, ch_, r, q]
    assert np.array_equal(loop, out)
    return {"name": name, "kind": "cutmix", "n": n, "shape": [c, h, w], "k": k, "lam": lam, "cy": cy, "cx": cx,
            "box": [y0, y1, x0, x1], "lam_box": lam_box, "x": x.ravel().tolist(), "y": y.tolist(),
            "out": out.ravel().tolist(), "soft": soft_targets(y, lam_box, k).ravel().tolist()}


cases = [
    loss_case("loss_even", 4, 5, 0.7),
    loss_case("loss_odd", 5, 3, 0.25),
    loss_case("loss_lam1", 3, 4, 1.0),
    mixup_case("mixup_even", 4, 6, 3, 0.6),
    mixup_case("mixup_odd", 5, 4, 4, 0.15),
    cutmix_case("cutmix_centre", 4, 2, 6, 5, 3, 0.5, 3, 2),
    cutmix_case("cutmix_corner_clipped", 3, 1, 7, 7, 4, 0.3, 0, 6),
    cutmix_case("cutmix_odd_sides", 2, 3, 5, 8, 5, 0.81, 2, 4),
    cutmix_case("cutmix_lam0", 2, 1, 4, 4, 2, 0.0, 1, 1),
]

path = os.path.join("Tests", "Fixtures", "mixup.json")
with open(path, "w") as f:
    f.write('{"cases": [\n' + ",\n".join(json.dumps(c) for c in cases) + "\n]}\n")
print(f"wrote {path}: {len(cases)} cases")
