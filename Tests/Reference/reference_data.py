"""The input statistics nncc's trainer must compute for examples/data/iris.csv (train --normalize feature) and for
a uint8 image set (--normalize channel), written to Tests/Fixtures/data_stats.json for DataTests. NumPy, float64
statistics of the float32-scaled inputs, population std (ddof 0), as scikit-learn's StandardScaler and the
runtime's prep.c. Run from the repository root: python3 Tests/Reference/reference_data.py"""
import json, os
import numpy as np

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = {}

# Iris: the four measurement columns of the CSV, scale 1, per feature; the classes in sorted order.
rows = [line.strip().split(",") for line in open(os.path.join(root, "examples/data/iris.csv")).read().splitlines()[1:]]
x = np.array([[float(v) for v in r[:4]] for r in rows], dtype=np.float32).astype(np.float64)
out["iris"] = {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "max": float(np.abs(x).max()),
               "classes": sorted({r[4] for r in rows})}

# Images: 6 uint8 images of shape (2, 3, 4) from a fixed seed, scale 1/255 (x / 255 in float32), per channel.
rng = np.random.RandomState(11)
img = rng.randint(0, 256, size=(6, 2, 3, 4)).astype(np.uint8)
v = (img.astype(np.float32) / np.float32(255)).astype(np.float64)
out["images"] = {"shape": list(img.shape), "bytes": img.reshape(-1).tolist(),
                 "mean": v.mean(axis=(0, 2, 3)).tolist(), "std": v.std(axis=(0, 2, 3)).tolist()}

with open(os.path.join(root, "Tests/Fixtures/data_stats.json"), "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
