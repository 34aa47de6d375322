#!/usr/bin/env python3
"""Checks an ONNX file that `nncc export` wrote against the outputs nncc itself computed.

    python3 Tests/Reference/onnx_check.py MODEL.onnx X.npy EXPECTED.npy [--tol 1e-5] [--whole-batch-only]

1. `onnx.checker.check_model` with full_check (the schema, every node against its opset, shape inference).
2. onnxruntime runs the model on X (reshaped to the graph input's per-sample shape, NCHW stays NCHW) once as one
   batch and once sample by sample, which checks that the batch dimension is dynamic (--whole-batch-only: one
   batch only, for a graph that takes statistics over the batch).
3. Both results must equal EXPECTED (the trainer's `predict` output, or the IR interpreter's) within
   |a - e| <= tol, elementwise.

Prints one line with the largest difference; exit 0 when every check passes, 1 otherwise. Needs numpy, onnx and
onnxruntime (scripts/install-deps.sh installs them); the Swift test that runs this skips when they are absent.
"""
import argparse
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("x")
    ap.add_argument("expected")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--whole-batch-only", action="store_true")
    a = ap.parse_args()

    model = onnx.load(a.model)
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    (out,) = sess.get_outputs()
    if not isinstance(inp.shape[0], str) or not isinstance(out.shape[0], str):
        print(f"onnx_check: the batch dimension is not symbolic: input {inp.shape}, output {out.shape}")
        return 1
    x = np.load(a.x).astype(np.float32)
    x = x.reshape([x.shape[0]] + list(inp.shape[1:]))
    expected = np.load(a.expected)
    whole = sess.run([out.name], {inp.name: x})[0]
    runs = [("batch", whole)]
    if not a.whole_batch_only:
        runs.append(("one by one", np.concatenate([sess.run([out.name], {inp.name: x[i:i + 1]})[0] for i in range(len(x))])))
    worst = 0.0
    for name, got in runs:
        if got.shape != expected.shape:
            print(f"onnx_check: {name}: output shape {got.shape}, expected {expected.shape}")
            return 1
        diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
        worst = max(worst, diff)
        if not diff <= a.tol:
            i = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape)
            print(f"onnx_check: {name}: element {i} is {got[i]!r}, expected {expected[i]!r} (max |diff| {diff:.3g} > {a.tol:g})")
            return 1
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"onnx_check: ok: {len(x)} samples, max |diff| {worst:.3g} <= {a.tol:g}; opset "
          f"{model.opset_import[0].version}, {len(model.graph.node)} nodes ({', '.join(ops)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
