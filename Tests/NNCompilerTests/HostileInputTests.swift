import Foundation
import Testing
@testable import NNCompiler

/// #17 on a generated trainer: the reported cross-entropy keeps its precision when the loss is small.
@Suite struct HostileInputTests {
    /// Logits (1000, 990, 990) for label 0: the loss is log(1 + 2e⁻¹⁰) ≈ 9.08e-5. Accumulated as
    /// mx + log(sum) − zy in float32, log(sum) is rounded to the ulp of 1000 (6.1e-5) before zy is subtracted
    /// (a third of the loss); as (mx − zy) + log(sum) it is good to the float32 rounding of sum (1e-3 relative).
    /// Checked through eval --json (the softmax cross-entropy kernel) and the first step's logged loss (the
    /// loss-with-gradient kernel of train_step).
    @Test func smallCrossEntropyKeepsItsPrecision() throws {
        let dir = Paths.tempDir()
        let model = try writeModel("confident", """
            import NNDSL
            train(Sequential { Linear(1, 3) }, input: 1, loss: .crossEntropy, optimizer: SGD(learningRate: 0.1), batchSize: 4)
            """, in: dir)
        let exe = try compileTrainer(model, into: dir)
        let w = dir.appendingPathComponent("w.safetensors"), x = dir.appendingPathComponent("x.npy")
        let y = dir.appendingPathComponent("y.npy")
        try writeSafetensors(w, ["0.weight": ([3, 1], [0, 0, 0]), "0.bias": ([3], [1000, 990, 990])])
        try DataFiles.npyF32(x, shape: [4, 1], [0.5, -1, 2, 0])
        try DataFiles.npy(y, descr: "<i8", shape: [4], raw: [Int64](repeating: 0, count: 4).withUnsafeBytes { Data($0) })
        let exact = log1p(2 * exp(-10.0))

        let e = try Run.run(exe, ["eval", "--weights", w.path, "--test-x", x.path, "--test-y", y.path, "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any]
        let loss = try #require(json?["test_loss"] as? Double, "eval --json printed: \(e.stdout)")
        #expect(close(loss, exact, rtol: 1e-3), "eval: \(loss), float64 gives \(exact)")

        let log = dir.appendingPathComponent("m.jsonl")
        let t = try Run.run(exe, ["train", "--init", w.path, "--train-x", x.path, "--train-y", y.path, "--epochs", "1", "--val-split", "0",
                                  "--lr", "0", "--log-every", "1", "--log", log.path, "--quiet"])
        #expect(t.status == 0, "\(t.stderr)")
        let step = try #require(try readJSONL(log).first { $0["step"] != nil }?["loss"] as? Double)
        #expect(close(step, exact, rtol: 1e-3), "train_step: \(step), float64 gives \(exact)")
    }
}
