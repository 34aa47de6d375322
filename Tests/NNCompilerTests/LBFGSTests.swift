import Foundation
import Testing

/// Full-batch L-BFGS (runtime/lbfgs.c): the compiled trainer against the NumPy transcription of
/// torch.optim.LBFGS (Tests/Reference/reference_lbfgs.py → Tests/Fixtures/lbfgs.json), a convex quadratic against
/// its closed-form minimum, resuming a checkpoint, and the runs it refuses.
///
/// Tolerances: every iteration's loss and every epoch's loss within 1e-4 relative, final weights within 1e-4
/// absolute + 1e-3 relative (the trainer is float32 as torch's default, the reference float64; torch's own
/// float32 run of these cases is as far from the reference as the trainer).
@Suite(.serialized) struct LBFGSTests {
    static let fixtures = Paths.fixtures.appendingPathComponent("trajectory")
    static let dir = Paths.tempDir("lbfgs")

    static func reference(_ key: String) throws -> [String: Any] {
        try readJSON(Paths.fixtures.appendingPathComponent("lbfgs.json"))[key] as! [String: Any]
    }

    /// The model of the reference case `key` (the trajectory fixtures' classifier or regressor) with its
    /// LBFGS(…), the whole set (70 samples) in one batch.
    static func source(_ key: String) throws -> String {
        let ref = try reference(key)
        let (layers, input, loss) = ref["model"] as! String == "cls"
            ? ("Linear(20, 16); ReLU(); Linear(16, 12); Tanh(); Linear(12, 4)", 20, ".crossEntropy")
            : ("Linear(6, 8); Sigmoid(); Linear(8, 2)", 6, ".mse")
        return """
        import NNDSL
        let model = Sequential { \(layers) }
        train(model, input: \(input), loss: \(loss), optimizer: \(ref["dsl"] as! String), batchSize: 70, epochs: \(ref["epochs"] as! Int))
        """
    }

    /// One trainer per reference case, compiled once for the suite.
    static func trainer(_ key: String) throws -> String {
        try compileTrainer(try writeModel(key, try source(key), in: dir), into: dir)
    }

    @Test(arguments: ["reg_strong_wolfe", "reg_fixed_step", "cls_strong_wolfe"])
    func trajectoryMatchesReference(_ key: String) throws {
        let ref = try Self.reference(key)
        let tmp = Paths.tempDir("lbfgs_\(key)")
        let m = ref["model"] as! String
        let (log, saved) = try trainFromFixture(try Self.trainer(key), x: "\(m)_x", y: "\(m)_y", initial: m, in: tmp)
        try expectMatchesReference(log: log, saved: saved, reference: ref, key)
        try expectEpochLosses(log, ref["step_losses"] as! [Double], key)
    }

    /// --batch 16 computes the same full-batch loss and gradient in five chunks (the last one of 6 samples).
    @Test func chunkedBatchesFollowTheSameTrajectory() throws {
        let ref = try Self.reference("cls_strong_wolfe")
        let tmp = Paths.tempDir()
        let d = Self.fixtures.path, log = tmp.appendingPathComponent("m.jsonl"), saved = tmp.appendingPathComponent("w.safetensors")
        let r = try Run.run(try Self.trainer("cls_strong_wolfe"), [
            "train", "--val-split", "0", "--train-x", "\(d)/cls_x.npy", "--train-y", "\(d)/cls_y.npy", "--init", "\(d)/cls_init.safetensors",
            "--batch", "16", "--log", log.path, "--log-every", "1", "--save", saved.path, "--quiet"])
        try #require(r.status == 0, "train failed: \(r.stderr)")
        try expectMatchesReference(log: log, saved: saved, reference: ref, "cls_strong_wolfe --batch 16")
    }

    func expectEpochLosses(_ log: URL, _ want: [Double], _ label: String,
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
        let got = try readJSONL(log).compactMap { $0["train_loss"] as? Double }
        #expect(got.count == want.count, "\(label): \(got.count) epochs, reference \(want.count)", sourceLocation: sourceLocation)
        for (i, (g, w)) in zip(got, want).enumerated() {
            #expect(close(g, w, rtol: 1e-4), "\(label) epoch \(i + 1): train_loss \(g), reference \(w)",
                    sourceLocation: sourceLocation)
        }
    }
}

extension LBFGSTests {
    /// A linear regressor under MSE is a convex quadratic: L-BFGS with the strong-Wolfe search reaches the least-squares
    /// solution of [x 1]·θ = y (the normal equations, solved here in float64) within 1e-4.
    @Test func quadraticReachesTheClosedFormMinimum() throws {
        let tmp = Paths.tempDir()
        let model = try writeModel("lbfgs_quadratic", """
            import NNDSL
            train(Linear(6, 2), input: 6, loss: .mse, optimizer: LBFGS(historySize: 10, lineSearch: .strongWolfe),
                  batchSize: 70, epochs: 3)
            """, in: tmp)
        let d = Self.fixtures.path, saved = tmp.appendingPathComponent("w.safetensors")
        let r = try Run.run(try compileTrainer(model, into: tmp), [
            "train", "--val-split", "0", "--train-x", "\(d)/reg_x.csv", "--train-y", "\(d)/reg_y.csv", "--save", saved.path, "--quiet"])
        try #require(r.status == 0, "train failed: \(r.stderr)")
        let saved_ = try readSafetensors(saved)
        let weight = try #require(saved_.first { $0.key.hasSuffix("weight") }?.value, "no weight in \(saved_.keys)")
        let bias = try #require(saved_.first { $0.key.hasSuffix("bias") }?.value, "no bias in \(saved_.keys)")
        let x = try csvRows("\(d)/reg_x.csv"), y = try csvRows("\(d)/reg_y.csv")
        for k in 0..<2 {
            let theta = leastSquares(x.map { $0 + [1] }, y.map { $0[k] })
            let got = (0..<6).map { Double(weight.data[k * 6 + $0]) } + [Double(bias.data[k])]
            for (g, t) in zip(got, theta) {
                #expect(abs(g - t) <= 1e-4, "output \(k): weights \(got), least squares \(theta)")
            }
        }
    }

    func csvRows(_ path: String) throws -> [[Double]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").map { Double($0)! } }
    }

    /// θ minimizing ‖Aθ − b‖²: AᵀA θ = Aᵀb by Gaussian elimination with partial pivoting.
    func leastSquares(_ a: [[Double]], _ b: [Double]) -> [Double] {
        let n = a[0].count
        var m = (0..<n).map { i in (0..<n).map { j in zip(a, a).reduce(0) { $0 + $1.0[i] * $1.1[j] } }
                                  + [zip(a, b).reduce(0) { $0 + $1.0[i] * $1.1 }] }
        for c in 0..<n {
            let p = (c..<n).max { abs(m[$0][c]) < abs(m[$1][c]) }!
            m.swapAt(c, p)
            for r in 0..<n where r != c {
                let f = m[r][c] / m[c][c]
                for j in c...n { m[r][j] -= f * m[c][j] }
            }
        }
        return (0..<n).map { m[$0][n] / m[$0][$0] }
    }
}

extension LBFGSTests {
    struct Refusal: CustomStringConvertible, Sendable {
        var name: String
        var flags: [String]
        var status: Int32
        var message: [String]
        var description: String { name }
    }

    /// Flags full-batch L-BFGS cannot honour, and runs whose loss stops being finite inside the line search (lr 1e30:
    /// the first trial point's loss overflows float32): one line, the exit status, and no weights file.
    static let refusals: [Refusal] = [
        Refusal(name: "steps", flags: ["--steps", "3"], status: 2, message: ["--steps", "L-BFGS", "--epochs"]),
        Refusal(name: "ema", flags: ["--ema", "0.9"], status: 2, message: ["--ema", "L-BFGS"]),
        Refusal(name: "fractional_history", flags: ["--history-size", "2.5"], status: 2, message: ["--history-size", "whole"]),
        Refusal(name: "zero_history", flags: ["--history-size", "0"], status: 2, message: ["--history-size"]),
        Refusal(name: "zero_max_iter", flags: ["--max-iter", "0"], status: 2, message: ["--max-iter"]),
        Refusal(name: "diverges_in_line_search", flags: ["--lr", "1e30"], status: 1,
                message: ["training diverged", "the loss at step length t = ", "is inf", "w.safetensors was not written"]),
    ]

    @Test(arguments: refusals)
    func refuses(_ c: Refusal) throws {
        let tmp = Paths.tempDir("lbfgs_refuses_\(c.name)")
        let d = Self.fixtures.path, saved = tmp.appendingPathComponent("w.safetensors")
        let r = try Run.run(try Self.trainer("reg_strong_wolfe"), [
            "train", "--val-split", "0", "--train-x", "\(d)/reg_x.npy", "--train-y", "\(d)/reg_y.npy", "--save", saved.path] + c.flags, cwd: tmp)
        #expect(r.status == c.status, "\(c): exit \(r.status), stderr: \(r.stderr)")
        for m in c.message { #expect(r.stderr.contains(m), "\(c): stderr lacks \(m): \(r.stderr)") }
        #expect(r.stderr.split(separator: "\n").count == 1, "\(c): more than one line: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: saved.path), "\(c): a weights file was written")
    }

    /// A checkpoint holds the history (the pairs, the direction, the step length, the previous gradient, H_diag and
    /// the iteration count: the lbfgs.* keys of docs/trainer.md), so one epoch resumed to three takes the steps of
    /// three straight epochs: the same weights, byte for byte, and the same JSONL.
    @Test func resumingIsBitIdentical() throws {
        let tmp = Paths.tempDir()
        let d = Self.fixtures.path, ck = tmp.appendingPathComponent("c.ckpt").path
        let exe = try Self.trainer("reg_strong_wolfe")
        let data = ["--val-split", "0", "--train-x", "\(d)/reg_x.npy", "--train-y", "\(d)/reg_y.npy", "--log-every", "1", "--quiet"]
        let file = { (name: String) in tmp.appendingPathComponent(name) }
        let straight = try Run.run(exe, ["train"] + data + ["--epochs", "3", "--log", file("s.jsonl").path, "--save", file("s.st").path])
        try #require(straight.status == 0, "train failed: \(straight.stderr)")
        let first = try Run.run(exe, ["train"] + data + ["--epochs", "1", "--log", file("r.jsonl").path, "--checkpoint", ck])
        try #require(first.status == 0, "train failed: \(first.stderr)")
        let r = try Run.run(exe, ["train"] + data + ["--resume", ck, "--epochs", "3", "--log", file("r.jsonl").path, "--save", file("r.st").path])
        try #require(r.status == 0, "resume failed: \(r.stderr)")
        #expect(try Data(contentsOf: file("s.st")) == Data(contentsOf: file("r.st")), "the resumed weights differ")
        let metrics = { (url: URL) in
            try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: #","seconds":[^}]*\}"#, with: "}", options: .regularExpression)
        }
        #expect(try metrics(file("s.jsonl")) == metrics(file("r.jsonl")), "the resumed JSONL differs")
    }

    /// The fixed-step path too: its first step's evaluation overflows.
    @Test func fixedStepDivergenceIsAnError() throws {
        let tmp = Paths.tempDir()
        let d = Self.fixtures.path, saved = tmp.appendingPathComponent("w.safetensors")
        let r = try Run.run(try Self.trainer("reg_fixed_step"), [
            "train", "--val-split", "0", "--train-x", "\(d)/reg_x.npy", "--train-y", "\(d)/reg_y.npy", "--save", saved.path, "--lr", "1e30"])
        #expect(r.status == 1, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("training diverged") && r.stderr.contains("is inf"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: saved.path))
    }
}
