"""Writes the small regression data set of examples/sine_regression.swiftnn (committed; rerun to regenerate).
y = sin(3x) + 0.5·x², x uniform in [-2, 2], with Gaussian noise (std 0.05) on the training targets."""
import numpy as np, os
here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.RandomState(3)
def make(n, noise):
    x = rng.uniform(-2, 2, size=(n, 1)).astype(np.float32)
    y = (np.sin(3 * x) + 0.5 * x ** 2 + noise * rng.randn(n, 1)).astype(np.float32)
    return x, y
for name, n, noise in [("train", 2048, 0.05), ("test", 512, 0.0)]:
    x, y = make(n, noise)
    np.save(os.path.join(here, f"sine_{name}_x.npy"), x)
    np.save(os.path.join(here, f"sine_{name}_y.npy"), y)
