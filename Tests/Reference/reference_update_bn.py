"""NumPy reference for SWA's update_bn (torch.optim.swa_utils.update_bn), written to Tests/Fixtures/update_bn.json.

update_bn resets each BatchNorm's running statistics, sets its momentum to None (a cumulative average: batch k
enters with weight 1/k, so every batch counts equally) and runs the model in train mode over the data once. For
the model Sequential { BatchNorm(20); Linear(20, 4) } the BatchNorm sees the inputs themselves, so its running
statistics are the mean over the batches of each batch's mean and unbiased variance, whatever the weights; and
num_batches_tracked is the number of batches. nncc's trainer walks the training set in file order in batches of
--batch (the last one partial). The inputs are Tests/Fixtures/trajectory/cls_x.npy (70 samples, float32, used as
they are: --scale auto leaves floats alone).
Run from the repository root: python3 Tests/Reference/reference_update_bn.py"""
import json
import numpy as np

x = np.load("Tests/Fixtures/trajectory/cls_x.npy").astype(np.float64)
out = {}
for batch in (4, 16):
    means, variances = [], []
    for s in range(0, len(x), batch):
        b = x[s:s + batch]
        means.append(b.mean(0))
        variances.append(b.var(0, ddof=1) if len(b) > 1 else b.var(0))  # n/(n−1) with max(n − 1, 1), as nncc
    out[str(batch)] = {"batches": len(means),
                       "running_mean": [float(v) for v in np.mean(means, 0)],
                       "running_var": [float(v) for v in np.mean(variances, 0)]}
with open("Tests/Fixtures/update_bn.json", "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
