import Foundation
import Testing

/// Trains `exe` on the fixture files `<x>.npy`/`<y>.npy` from `<initial>_init.safetensors`, in file order, logging
/// every step; returns the JSONL log and the saved weights, both in `tmp`.
func trainFromFixture(_ exe: String, x: String, y: String, initial: String, in tmp: URL,
                      sourceLocation: SourceLocation = #_sourceLocation) throws -> (log: URL, saved: URL) {
    let log = tmp.appendingPathComponent("m.jsonl"), saved = tmp.appendingPathComponent("w.safetensors")
    let d = Paths.fixtures.appendingPathComponent("trajectory").path
    let r = try Run.run(exe, ["train", "--train-x", "\(d)/\(x).npy", "--train-y", "\(d)/\(y).npy",
                              "--init", "\(d)/\(initial)_init.safetensors", "--no-shuffle", "--val-split", "0", "--log", log.path,
                              "--log-every", "1", "--save", saved.path, "--quiet"])
    try #require(r.status == 0, "train failed: \(r.stderr)", sourceLocation: sourceLocation)
    return (log, saved)
}

/// Compares a training run with a reference run from expected.json: the loss (and, where the reference has it,
/// the learning rate) of every step in the JSONL log, and the saved final weights.
/// Tolerances: losses 1e-4 relative (float32 trainer, float64 reference); the logged rate 1e-8 relative
/// (9 significant digits); weights 1e-4 absolute + 1e-3 relative.
func expectMatchesReference(log: URL, saved: URL, reference ref: [String: Any], _ label: String,
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
    let want = ref["losses"] as! [Double]
    let steps = try readJSONL(log).filter { $0["step"] != nil }
    let got = steps.compactMap { $0["loss"] as? Double }
    for (i, (g, w)) in zip(steps.compactMap { $0["lr"] as? Double }, ref["lr"] as? [Double] ?? []).enumerated() {
        #expect(close(g, w, rtol: 1e-8, atol: 1e-12), "\(label) step \(i + 1): lr \(g), reference \(w)",
                sourceLocation: sourceLocation)
    }
    #expect(got.count == want.count, "\(label): \(got.count) steps logged, reference has \(want.count)",
            sourceLocation: sourceLocation)
    for (i, (g, w)) in zip(got, want).enumerated() {
        #expect(close(g, w, rtol: 1e-4), "\(label) step \(i + 1): loss \(g), reference \(w)", sourceLocation: sourceLocation)
    }
    let weights = try readSafetensors(saved)
    for (name, v) in ref["final_params"] as! [String: Any] {
        let w = (v as! [String: Any])["data"] as! [Double]
        let g = try #require(weights[name], "\(name) missing from the saved weights", sourceLocation: sourceLocation)
        let worst = zip(g.data, w).map { abs(Double($0) - $1) - 1e-3 * abs($1) }.max() ?? 0
        #expect(worst <= 1e-4, "\(label) \(name): final weights differ from the reference by up to \(worst)",
                sourceLocation: sourceLocation)
    }
}

/// Trains `exe` (an image model of 1×8×8 inputs) 3 epochs on the CNN trajectory fixture, with that set as its test
/// set too, and returns the epoch lines without their wall-clock seconds: what the augmentation and mixup tests
/// compare between runs.
func trainCNNFixtureEpochs(_ exe: String, _ extra: [String], save: URL, seed: Int = 7,
                           sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
    let d = Paths.fixtures.appendingPathComponent("trajectory").path
    let r = try Run.run(exe, ["train", "--train-x", "\(d)/cnn_x.npy", "--train-y", "\(d)/cnn_y.npy",
                              "--test-x", "\(d)/cnn_x.npy", "--test-y", "\(d)/cnn_y.npy", "--epochs", "3",
                              "--seed", "\(seed)", "--quiet", "--save", save.path] + extra)
    try #require(r.status == 0, "train \(extra): \(r.stderr)", sourceLocation: sourceLocation)
    return r.stdout.split(separator: "\n").filter { $0.hasPrefix("epoch") }
        .map { $0.replacingOccurrences(of: #"\s+[0-9.]+s$"#, with: "", options: .regularExpression) }
}
