"""Reads a TensorBoard run written by `nncc plot --tensorboard RUN METRICS.jsonl` with TensorBoard's own event
reader and compares it with the JSONL, independently parsed here.

    python3 Tests/Reference/tensorboard_check.py RUN_DIR METRICS.jsonl

Expected, from the JSONL (a step or epoch logged twice keeps its last value; null is left out):
  - `step/KEY` for every number of a line with "step" (but step and epoch), at that step;
  - `epoch/KEY` for every number of a line with "epoch" and no "step" (but epoch), at that epoch;
  - `histograms/NAME` for every member of a step line's "histograms" object, at that step.
Scalars must equal the JSONL's values rounded to float32 exactly; histograms must match field by field. The tag
sets must be equal: nothing missing, nothing extra. Prints a summary and exits 0, or the first mismatches and 1.
"""
import json
import sys

import numpy as np
from tensorboard.backend.event_processing import event_accumulator as ea


def expected(path):
    scalars, histograms = {}, {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            obj = json.loads(line)
            if isinstance(obj.get("step"), (int, float)) and not isinstance(obj.get("step"), bool):
                x, prefix, skip = obj["step"], "step/", {"step", "epoch"}
                for name, h in (obj.get("histograms") or {}).items():
                    histograms.setdefault("histograms/" + name, {})[x] = h
            elif isinstance(obj.get("epoch"), (int, float)) and not isinstance(obj.get("epoch"), bool):
                x, prefix, skip = obj["epoch"], "epoch/", {"epoch"}
            else:
                continue
            for k, v in obj.items():
                if k in skip or isinstance(v, bool) or not isinstance(v, (int, float)):
                    continue
                scalars.setdefault(prefix + k, {})[x] = v
    return scalars, histograms


def main():
    run, metrics = sys.argv[1], sys.argv[2]
    acc = ea.EventAccumulator(run, size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0})
    acc.Reload()
    tags = acc.Tags()
    want_scalars, want_hists = expected(metrics)
    errors = []
    if sorted(tags["scalars"]) != sorted(want_scalars):
        errors.append("scalar tags %s, expected %s" % (sorted(tags["scalars"]), sorted(want_scalars)))
    if sorted(tags["histograms"]) != sorted(want_hists):
        errors.append("histogram tags %s, expected %s" % (sorted(tags["histograms"]), sorted(want_hists)))
    n_scalars = 0
    for tag, by_x in want_scalars.items():
        got = [(e.step, e.value) for e in acc.Scalars(tag)] if tag in tags["scalars"] else []
        want = [(int(x), float(np.float32(by_x[x]))) for x in sorted(by_x)]
        n_scalars += len(want)
        if got != want:
            bad = [(g, w) for g, w in zip(got, want) if g != w][:3]
            errors.append("%s: %d points, expected %d; first differences (got, expected): %s" % (tag, len(got), len(want), bad))
    for tag, by_x in want_hists.items():
        got = {e.step: e.histogram_value for e in acc.Histograms(tag)} if tag in tags["histograms"] else {}
        if sorted(got) != sorted(int(x) for x in by_x):
            errors.append("%s: steps %s, expected %s" % (tag, sorted(got), sorted(by_x)))
            continue
        for x, h in by_x.items():
            g = got[int(x)]
            have = [g.min, g.max, g.num, g.sum, g.sum_squares, list(g.bucket_limit), list(g.bucket)]
            want = [h["min"], h["max"], h["num"], h["sum"], h["sum_squares"], h["bucket_limit"], h["bucket"]]
            if have != want:
                errors.append("%s at step %s: %s, expected %s" % (tag, x, have, want))
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print("%d scalar tags (%d points) and %d histogram tags match the JSONL" % (len(want_scalars), n_scalars, len(want_hists)))


if __name__ == "__main__":
    main()
