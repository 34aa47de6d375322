"""Cross-checks nncc's CNNs against PyTorch (optional: needs torch and safetensors; never run by the tests).

  python torch_cnn_crosscheck.py --nncc .build/release/nncc [--data /usr/share/datasets/fashion-mnist]

1. nncc → PyTorch: the CNN and ResNet examples, trained one epoch by nncc, load into the equivalent
   torch.nn.Sequential with load_state_dict(strict=True); in eval mode torch's class probabilities on 1,000 test
   images equal nncc's `predict` within 1e-4, and the test accuracy printed by `eval` is torch's.
2. PyTorch → nncc: torch's own initial weights, saved with safetensors.torch, are what nncc's `eval` reads;
   nncc's test loss equals torch's (float32 summation order only).
Prints one line per check and exits non-zero if any fails."""
import argparse, gzip, os, re, subprocess, sys, tempfile
import numpy as np
import torch, torch.nn as nn
from safetensors.torch import load_file, save_file

ap = argparse.ArgumentParser()
ap.add_argument("--nncc", required=True)
ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
a = ap.parse_args()
torch.set_num_threads(2)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
work = tempfile.mkdtemp(prefix="nncc-torch-cnn-")
failures = 0


def check(name, ok, detail):
    global failures
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)


class Residual(nn.Sequential):
    def forward(self, x):
        return x + super().forward(x)


def block(c):
    return Residual(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                    nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))


MODELS = {
    "fashion_mnist_cnn": lambda: nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)),
    "fashion_mnist_resnet": lambda: nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2), block(32),
        nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        block(64), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)),
}


def test_images(n):
    with gzip.open(os.path.join(a.data, "t10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    with gzip.open(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return (x / 255.0).astype(np.float32), y.astype(np.int64)


x, y = test_images(1000)
np.save(os.path.join(work, "x.npy"), x)
np.save(os.path.join(work, "y.npy"), y)
for name, make in MODELS.items():
    exe = os.path.join(work, name)
    subprocess.run([a.nncc, "compile", os.path.join(REPO, "examples", f"{name}.swiftnn"), "-o", exe], check=True)
    w = os.path.join(work, f"{name}.safetensors")
    subprocess.run([exe, "train", "--data", a.data, "--epochs", "1", "--save", w, "--quiet"], check=True)
    model = make()
    state = {k: v for k, v in load_file(w).items()}
    missing = model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        probs_t = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
    out = os.path.join(work, f"{name}_p.npy")
    subprocess.run([exe, "predict", "--weights", w, "--input", os.path.join(work, "x.npy"), "--output", out], check=True)
    probs_n = np.load(out)
    diff = float(np.abs(probs_n - probs_t).max())
    check(f"{name}: nncc's weights in torch (strict), predictions", diff <= 1e-4, f"max |Δp| {diff:.2e} over 1000 images")
    ev = subprocess.run([exe, "eval", "--weights", w, "--test-x", os.path.join(work, "x.npy"), "--test-y",
                         os.path.join(work, "y.npy")], capture_output=True, text=True, check=True).stdout
    acc_n = float(re.search(r"test_acc ([\d.]+)", ev).group(1))
    acc_t = float((probs_t.argmax(1) == y).mean())
    check(f"{name}: test accuracy", abs(acc_n - acc_t) < 1e-9, f"nncc {acc_n:.4f}, torch {acc_t:.4f}")
    # PyTorch → nncc: torch's init, evaluated by nncc.
    torch.manual_seed(1)
    fresh = make().eval()
    tw = os.path.join(work, f"{name}_torch.safetensors")
    save_file({k: v.contiguous() for k, v in fresh.state_dict().items()}, tw)
    with torch.no_grad():
        loss_t = float(nn.functional.cross_entropy(fresh(torch.from_numpy(x)), torch.from_numpy(y)))
    ev = subprocess.run([exe, "eval", "--weights", tw, "--test-x", os.path.join(work, "x.npy"), "--test-y",
                         os.path.join(work, "y.npy"), "--json"], capture_output=True, text=True)
    if ev.returncode != 0:   # a trainer without --json prints 4 decimals
        ev = subprocess.run([exe, "eval", "--weights", tw, "--test-x", os.path.join(work, "x.npy"), "--test-y",
                             os.path.join(work, "y.npy")], capture_output=True, text=True)
    m = re.search(r'"test_loss":\s*([-\d.e]+)', ev.stdout) or re.search(r"test_loss ([\d.]+)", ev.stdout)
    loss_n = float(m.group(1)) if m else float("nan")
    check(f"{name}: torch's init in nncc (strict load), test loss", abs(loss_n - loss_t) <= 1e-4,
          f"nncc {loss_n:.6f}, torch {loss_t:.6f} ({ev.stderr.strip()[:200]})")
print(f"{failures} failed")
sys.exit(failures != 0)
