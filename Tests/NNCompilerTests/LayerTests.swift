import Foundation
import Testing
@testable import NNCompiler
import NNIR

/// Normalization, layout ops and dropout through the generated C: the trainer's numbers against the float64
/// interpreter on the same graph, gradcheck, dropout's train/eval behaviour and the weights file.
@Suite(.serialized) struct LayerTests {
    static let dir = Paths.tempDir("layers")

    /// A DAG: a residual block with BatchNorm, a LayerNorm branch concatenated with a Maxout branch.
    static let dagSource = """
        import NNDSL
        let x = Input(6)
        let h = x |> Linear(6, 8, name: "stem") |> BatchNorm(8, name: "bn") |> ReLU()
        let r = h |> Residual(name: "res") { Linear(8, 8); LayerNorm(8); Tanh() }
        let m = Maxout(8, 4, pieces: 3, name: "maxout")(r)
        let features = concat(m, r |> LayerNorm(8, name: "ln"))
        let logits = features |> Linear(12, 3, name: "head")
        train(logits, loss: .crossEntropy, optimizer: SGD(learningRate: 0.05, momentum: 0.9), batchSize: 8, epochs: 2)
        """

    static func data() throws -> (x: URL, y: URL, xs: [Float], ys: [Int]) {
        var rng = TestRandom(seed: 11)
        let n = 20
        let xs = (0..<(n * 6)).map { _ in Float(rng.uniform(-2, 2)) }
        let ys: [Int] = (0..<n).map { i in
            let a: Int = xs[i * 6] + xs[i * 6 + 1] > 0 ? 1 : 0
            let b: Int = xs[i * 6 + 2] > 1 ? 1 : 0
            return a + b
        }
        let (x, y) = (dir.appendingPathComponent("x.npy"), dir.appendingPathComponent("y.npy"))
        try DataFiles.npyF32(x, shape: [n, 6], xs)
        try DataFiles.npy(y, descr: "<i4", shape: [n], raw: ys.map { Int32($0) }.withUnsafeBytes { Data($0) })
        return (x, y, xs, ys)
    }

    @Test func dagMatchesTheInterpreterAndPassesGradcheck() throws {
        let model = try writeModel("dag", Self.dagSource, in: Self.dir)
        let exe = try compileTrainer(model, into: Self.dir)
        let (xf, yf, xs, ys) = try Self.data()
        let forward = try Driver(tools: try Paths.toolchain()).evaluate(model.path)

        // Weights: random, written to a file the trainer starts from.
        var rng = TestRandom(seed: 3)
        var weights: [String: (shape: [Int], data: [Float])] = [:]
        for p in forward.params where !p.counter {
            let lo = p.name.hasSuffix("running_var") ? 0.5 : -0.5
            weights[p.name] = (p.shape, (0..<p.count).map { _ in Float(rng.uniform(lo, lo + 1)) })
        }
        let w = Self.dir.appendingPathComponent("w.safetensors")
        try writeSafetensors(w, weights, counters: ["bn.num_batches_tracked": 0])
        let params = weights.mapValues { Tensor64(shape: $0.shape, data: $0.data.map(Double.init)) }

        // The first logged loss is the train-mode loss of samples 0..<8 before any update.
        let log = Self.dir.appendingPathComponent("m.jsonl")
        let t = try Run.run(exe, ["train", "--train-x", xf.path, "--train-y", yf.path, "--init", w.path, "--no-shuffle", "--val-split", "0",
                                  "--epochs", "1", "--log", log.path, "--log-every", "1", "--quiet"])
        try #require(t.status == 0, "\(t.stderr)")
        let first = try #require(try readJSONL(log).first?["loss"] as? Double)
        let batch = ["x": Tensor64(shape: [8, 6], data: xs[0..<48].map(Double.init)),
                     "y": Tensor64(shape: [8], data: ys[0..<8].map(Double.init))]
        let train = forward.specialized(for: .train)
        let want = try train.evaluate(inputs: batch, params: params)[train.outputs[.loss]!]!.data[0]
        #expect(close(first, want, rtol: 1e-5), "train-mode loss: C \(first), interpreter \(want)")

        // Eval mode through predict: softmax of the logits computed with the running statistics.
        let out = Self.dir.appendingPathComponent("p.npy")
        let pr = try Run.run(exe, ["predict", "--weights", w.path, "--input", xf.path, "--output", out.path])
        try #require(pr.status == 0, "\(pr.stderr)")
        let raw = try Data(contentsOf: out)
        let hl = Int(raw[8]) | Int(raw[9]) << 8
        let probs = raw.subdata(in: (10 + hl)..<raw.count).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let eval = forward.specialized(for: .eval)
        let all = ["x": Tensor64(shape: [20, 6], data: xs.map(Double.init)), "y": Tensor64(shape: [20], data: ys.map(Double.init))]
        let logits = try eval.evaluate(inputs: all, params: params)[eval.outputs[.output]!]!
        for i in 0..<20 {
            let row = logits.data[(i * 3)..<(i * 3 + 3)], mx = row.max()!
            let e = row.map { Foundation.exp($0 - mx) }, s = e.reduce(0, +)
            for j in 0..<3 {
                #expect(abs(Double(probs[i * 3 + j]) - e[j] / s) < 1e-5, "sample \(i) class \(j): C \(probs[i * 3 + j]), interpreter \(e[j] / s)")
            }
        }

        let check = try Run.run(exe, ["gradcheck", "--train-x", xf.path, "--train-y", yf.path, "--samples", "6"])
        #expect(check.status == 0 && check.stdout.contains("gradcheck: passed"), "\(check.stdout)\(check.stderr)")
    }

    static let dropoutSource = """
        import NNDSL
        let model = Sequential { Linear(6, 16); ReLU(); Dropout(0.5); Linear(16, 3) }
        train(model, input: 6, loss: .crossEntropy, optimizer: SGD(learningRate: 0.1), batchSize: 8, epochs: 2)
        """

    static func losses(_ exe: String, _ extra: [String], _ tag: String) throws -> [Double] {
        let (x, y, _, _) = try data()
        let log = dir.appendingPathComponent("\(tag).jsonl")
        let r = try Run.run(exe, ["train", "--train-x", x.path, "--train-y", y.path, "--log", log.path, "--log-every", "1",
                                  "--quiet"] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        return try readJSONL(log).compactMap { $0["step"] != nil ? $0["loss"] as? Double : nil }
    }

    /// Dropout draws from the seeded generator: the same seed gives the same run, another seed another run,
    /// `--dropout 0` is the model without dropout, and evaluation is deterministic.
    @Test func dropoutIsSeededAndOffInEvaluation() throws {
        let exe = try compileTrainer(try writeModel("drop", Self.dropoutSource, in: Self.dir), into: Self.dir)
        let plain = try compileTrainer(try writeModel("nodrop", Self.dropoutSource.replacingOccurrences(of: "Dropout(0.5); ", with: ""), in: Self.dir), into: Self.dir)
        let a = try Self.losses(exe, ["--seed", "4"], "a"), b = try Self.losses(exe, ["--seed", "4"], "b")
        let c = try Self.losses(exe, ["--seed", "5"], "c")
        #expect(a == b && a.count == 6, "reproducible with a seed")
        #expect(a != c, "another seed draws other masks (and another init and order)")
        let off = try Self.losses(exe, ["--seed", "4", "--dropout", "0"], "off")
        let none = try Self.losses(plain, ["--seed", "4"], "none")
        #expect(off == none, "--dropout 0 trains exactly like the model without dropout")
        #expect(off != a)

        let (x, yf, _, _) = try Self.data()
        let w = Self.dir.appendingPathComponent("drop.safetensors")
        let xf = x
        _ = try Run.run(exe, ["train", "--train-x", xf.path, "--train-y", yf.path, "--save", w.path, "--quiet"])
        let p1 = Self.dir.appendingPathComponent("p1.npy"), p2 = Self.dir.appendingPathComponent("p2.npy")
        for p in [p1, p2] {
            #expect(try Run.run(exe, ["predict", "--weights", w.path, "--input", x.path, "--output", p.path]).status == 0)
        }
        #expect(try Data(contentsOf: p1) == Data(contentsOf: p2), "predictions are deterministic")
    }

    /// BatchNorm's weights file has PyTorch's keys: running statistics, and num_batches_tracked as int64 counting
    /// the training steps; it loads back with --init and gives the same evaluation.
    @Test func batchNormWeightsRoundTrip() throws {
        let exe = try compileTrainer(try writeModel("dag_rt", Self.dagSource, in: Self.dir), into: Self.dir)
        let (x, y, _, _) = try Self.data()
        let w = Self.dir.appendingPathComponent("rt.safetensors"), w2 = Self.dir.appendingPathComponent("rt2.safetensors")
        let t = try Run.run(exe, ["train", "--train-x", x.path, "--train-y", y.path, "--save", w.path, "--quiet"])
        try #require(t.status == 0, "\(t.stderr)")
        let saved = try readSafetensors(w)
        for k in ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked", "ln.weight", "ln.bias",
                  "res.0.weight", "res.1.weight", "maxout.weight", "head.bias"] {
            #expect(saved[k] != nil, "\(k) in \(saved.keys.sorted())")
        }
        #expect(saved["bn.num_batches_tracked"]?.data == [6], "2 epochs of 20 samples at batch 8: 6 steps")
        #expect(saved["bn.running_var"]?.data.allSatisfy { $0 > 0 } == true)
        #expect(saved["bn.running_mean"]?.data != Array(repeating: 0, count: 8), "updated in training")
        #expect(try Run.run(exe, ["train", "--train-x", x.path, "--train-y", y.path, "--init", w.path, "--epochs", "1",
                                  "--lr", "0", "--save", w2.path, "--quiet"]).status == 0)
        // With lr 0 the loaded weights come back unchanged; the running statistics move; the counter continues.
        let again = try readSafetensors(w2)
        for (k, v) in saved where !k.hasPrefix("bn.running") && !k.hasSuffix("num_batches_tracked") {
            #expect(again[k]?.data == v.data, "\(k) survives the round trip")
        }
        #expect(again["bn.num_batches_tracked"]?.data == [9], "6 loaded + 3 more steps")
        #expect(again["bn.running_mean"]?.data != saved["bn.running_mean"]?.data)
    }

    /// A last batch of one sample (20 samples at batch 19) keeps BatchNorm's running variance finite: the
    /// unbiased factor n/(n − 1) uses max(n − 1, 1).
    @Test func batchNormSurvivesABatchOfOne() throws {
        let exe = try compileTrainer(try writeModel("dag_one", Self.dagSource, in: Self.dir), into: Self.dir)
        let (x, y, _, _) = try Self.data()
        let w = Self.dir.appendingPathComponent("one.safetensors")
        let r = try Run.run(exe, ["train", "--train-x", x.path, "--train-y", y.path, "--batch", "19", "--epochs", "1", "--val-split", "0",
                                  "--save", w.path, "--quiet"])
        try #require(r.status == 0, "\(r.stderr)")
        let saved = try readSafetensors(w)
        #expect(saved["bn.running_var"]?.data.allSatisfy { $0.isFinite && $0 > 0 } == true, "\(saved["bn.running_var"]?.data ?? [])")
        #expect(saved["bn.num_batches_tracked"]?.data == [2])
    }
}
