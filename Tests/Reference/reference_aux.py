"""NumPy reference for auxiliary losses (deep supervision), written to Tests/Fixtures/aux_loss.json.

The model of AuxLossTests (Tests/NNCompilerTests/AuxLossTests.swift): x (n, 4) → h = tanh(x·Wbᵀ + bb) (5) →
main = h·Whᵀ + bh (3), and an auxiliary head aux = x·Waᵀ + ba (3) on the input. The training loss is
CE(main) + 0.3·CE(aux) (each the batch mean of −log softmax[i, yᵢ]), computed term by term; evaluation reports CE(main).
float64 throughout. Run from the repository root: python3 Tests/Reference/reference_aux.py"""
import json, os
import numpy as np

rng = np.random.RandomState(1919 + 20)


def ce(z, y):
    m = z.max(axis=1, keepdims=True)
    lp = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    return -lp[np.arange(len(y)), y].mean()


n = 6
params = {"body.weight": rng.uniform(-1, 1, (5, 4)), "body.bias": rng.uniform(-1, 1, 5),
          "head.weight": rng.uniform(-1, 1, (3, 5)), "head.bias": rng.uniform(-1, 1, 3),
          "aux.weight": rng.uniform(-1, 1, (3, 4)), "aux.bias": rng.uniform(-1, 1, 3)}
x, y = rng.uniform(-1.5, 1.5, (n, 4)), rng.randint(0, 3, n)
h = np.tanh(x @ params["body.weight"].T + params["body.bias"])
main = h @ params["head.weight"].T + params["head.bias"]
aux = x @ params["aux.weight"].T + params["aux.bias"]
out = {"x": x.ravel().tolist(), "y": y.tolist(), "n": n,
       "params": {k: {"shape": list(v.shape), "data": v.ravel().tolist()} for k, v in params.items()},
       "main_loss": ce(main, y), "aux_loss": ce(aux, y), "loss": ce(main, y) + 0.3 * ce(aux, y),
       "output": main.ravel().tolist()}
path = os.path.join("Tests", "Fixtures", "aux_loss.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print(f"wrote {path}")
