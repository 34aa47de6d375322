import Foundation
import Testing

/// Trains two small CNNs (Tests/Reference/reference_cnn.py, committed as Tests/Fixtures/cnn_trajectory.json) from
/// fixed weights in file order for one epoch of 5 Adam steps, and compares every step's loss, the final weights
/// and BatchNorm2d's running statistics with the NumPy reference, then the eval-mode loss and logits.
/// Tolerances: as `expectMatchesReference` (losses 1e-4 relative; weights 1e-4 absolute + 1e-3 relative); the
/// running statistics 1e-5 absolute + 1e-4 relative; eval's loss 5e-5 (it prints 4 decimals), 5e-4 with BatchNorm.
@Suite(.serialized) struct CNNTrajectoryTests {
    static func source(batchNorm: Bool) -> String {
        """
        import NNDSL
        let model = Sequential {
            Conv2d(1, 4, kernelSize: 3, padding: 1)
            \(batchNorm ? "BatchNorm2d(4)" : "")
            ReLU()
            MaxPool2d(2)
            Conv2d(4, 6, kernelSize: 3, padding: 1)
            ReLU()
            AvgPool2d(2)
            Flatten()
            Linear(24, 10)
        }
        train(model, input: [1, 8, 8], loss: .crossEntropy, optimizer: Adam(learningRate: 1e-3), batchSize: 4, epochs: 1)
        """
    }

    /// Both models fused (the default: without BatchNorm, the first max pooling runs in its convolution's calls)
    /// and with --no-fusion, the unfused reference path (every window op alone: the ReLU, the pooling, the bias
    /// gradient and the ReLU mask in their own kernels).
    @Test(arguments: [(false, true), (false, false), (true, true), (true, false)])
    func lossesWeightsAndEvalMatchReference(batchNorm: Bool, fusion: Bool) throws {
        let key = batchNorm ? "cnn_bn" : "cnn"
        let tmp = Paths.tempDir(key + (fusion ? "" : "_nofusion"))
        let exe = try compileTrainer(try writeModel(key, Self.source(batchNorm: batchNorm), in: tmp), into: tmp,
                                     flags: fusion ? [] : ["--no-fusion"])
        let (log, saved) = try trainFromFixture(exe, x: "cnn_x", y: "cnn_y", initial: key, in: tmp)
        let ref = try readJSON(Paths.fixtures.appendingPathComponent("cnn_trajectory.json"))[key] as! [String: Any]
        var adam = ref["adam"] as! [String: Any]
        // A convolution's bias in front of a BatchNorm has a zero gradient in exact arithmetic: Adam then steps
        // ±lr on rounding noise, whose sign differs between float32 and float64, and the running mean carries
        // that bias. Both are held to the bound two such runs can drift apart in 5 steps, 2·5·lr, instead.
        let noisy: Set<String> = batchNorm ? ["0.bias", "1.running_mean"] : []
        var params = adam["final_params"] as! [String: Any]
        let noisyParams = params.filter { noisy.contains($0.key) }
        params = params.filter { !noisy.contains($0.key) }
        adam["final_params"] = params
        try expectMatchesReference(log: log, saved: saved, reference: adam, key)
        let weights = try readSafetensors(saved)
        let buffers = (adam["final_buffers"] as? [String: Any] ?? [:]).merging(noisyParams) { a, _ in a }
        for (name, v) in buffers where !name.hasSuffix("num_batches_tracked") {
            let want = (v as! [String: Any])["data"] as! [Double]
            let got = try #require(weights[name], "\(name) missing from the saved weights")
            let worst = zip(got.data, want).map { abs(Double($0) - $1) - 1e-4 * abs($1) }.max() ?? 0
            let bound = noisy.contains(name) ? 2 * 5 * 1e-3 : 1e-5
            #expect(worst <= bound, "\(key) \(name): differs from the reference by up to \(worst)")
        }
        // Evaluation of the trained weights on all 20 samples, in eval mode (running statistics).
        let d = Paths.fixtures.appendingPathComponent("trajectory").path
        let r = try Run.run(exe, ["eval", "--weights", saved.path, "--test-x", "\(d)/cnn_x.npy", "--test-y", "\(d)/cnn_y.npy"])
        try #require(r.status == 0, "eval failed: \(r.stderr)")
        let loss = try #require(Double(r.stdout.split(separator: " ").drop { $0 != "test_loss" }.dropFirst().first ?? ""),
                                "no test_loss in '\(r.stdout)'")
        let want = (adam["eval_final"] as! [String: Any])["loss"] as! Double
        // With BatchNorm, evaluation reads the running mean, which carries the noisy bias (above): 5e-4.
        #expect(close(loss, want, rtol: 0, atol: batchNorm ? 5e-4 : 5e-5), "\(key): eval loss \(loss), reference \(want)")

        // predict's probabilities of the first 4 samples against the softmax of the reference's eval-mode logits:
        // the weights' layout (PyTorch's OIHW, NCHW activations) is the reference's. 1e-4 absolute (1e-3 with
        // BatchNorm, whose running mean carries the noisy bias).
        let probs = tmp.appendingPathComponent("p.npy")
        let pr = try Run.run(exe, ["predict", "--weights", saved.path, "--input", "\(d)/cnn_x.npy", "--output", probs.path])
        try #require(pr.status == 0, "predict failed: \(pr.stderr)")
        let raw = try Data(contentsOf: probs)
        let header = Int(raw[8]) | Int(raw[9]) << 8
        let got = raw.subdata(in: (10 + header)..<raw.count).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let logits = (adam["logits_final_first4"] as! [String: Any])["data"] as! [Double]
        for row in 0..<4 {
            let z = Array(logits[(row * 10)..<(row * 10 + 10)]), top = z.max()!
            let e = z.map { Foundation.exp($0 - top) }, sum = e.reduce(0, +)
            for j in 0..<10 {
                #expect(abs(Double(got[row * 10 + j]) - e[j] / sum) <= (batchNorm ? 1e-3 : 1e-4),
                        "\(key) sample \(row) class \(j): predict \(got[row * 10 + j]), reference \(e[j] / sum)")
            }
        }

        // The float64 gradient of this very model against central differences (the _f64 window kernels).
        let gc = try Run.run(exe, ["gradcheck"])
        #expect(gc.status == 0 && gc.stdout.contains("gradcheck: passed"), "\(key): \(gc.stdout)\(gc.stderr)")
    }

    /// Dropout2d zeroes whole channels: two channels of 4 ones each, kept at 1/(1 − p) = 2 or dropped, summed by a
    /// Linear of ones, give an output in {0, 8, 16}, so the MSE loss against 0 of a batch of one is 0, 64 or 256
    /// at every step (a learning rate of 1e-30 leaves the weights as they are in float32); dropping elements one by one would give other squares.
    @Test func dropout2dDropsWholeChannels() throws {
        let tmp = Paths.tempDir("dropout2d")
        let source = """
            import NNDSL
            let model = Sequential {
                Conv2d(1, 2, kernelSize: 1, weightInit: .constant(1), biasInit: .zeros)
                Dropout2d(0.5)
                Flatten()
                Linear(8, 1, weightInit: .constant(1), biasInit: .zeros)
            }
            train(model, input: [1, 1, 4], loss: .mse, optimizer: SGD(learningRate: 1e-30), batchSize: 1, epochs: 1)
            """
        let exe = try compileTrainer(try writeModel("dropout2d", source, in: tmp), into: tmp)
        let x = tmp.appendingPathComponent("x.npy"), y = tmp.appendingPathComponent("y.npy")
        try DataFiles.npyF32(x, shape: [40, 1, 1, 4], Array(repeating: 1, count: 160))
        try DataFiles.npyF32(y, shape: [40, 1], Array(repeating: 0, count: 40))
        let log = tmp.appendingPathComponent("m.jsonl")
        let r = try Run.run(exe, ["train", "--train-x", x.path, "--train-y", y.path, "--val-split", "0", "--log", log.path, "--log-every", "1", "--quiet"])
        try #require(r.status == 0, "\(r.stderr)")
        let losses = try readJSONL(log).compactMap { $0["step"] != nil ? $0["loss"] as? Double : nil }
        #expect(losses.count == 40)
        #expect(losses.allSatisfy { [0, 64, 256].contains($0) }, "losses \(losses)")
        #expect(Set(losses).count == 3, "all three outcomes occur in 40 draws: \(Set(losses))")
    }

    /// An image model refuses a file whose stored shape is not (N, C, H, W) (or (N, H, W) for one channel), naming
    /// the file and both shapes; a CSV, flat by nature, is read row by row in NCHW order.
    @Test func imageShapesAreChecked() throws {
        let tmp = Paths.tempDir("cnn_shapes")
        let exe = try compileTrainer(try writeModel("cnn", Self.source(batchNorm: false), in: tmp), into: tmp)
        var rng = TestRandom(seed: 3)
        let values = (0..<(6 * 64)).map { _ in Float(rng.next() % 256) / 255 }
        let y = tmp.appendingPathComponent("y.npy")
        try DataFiles.npy(y, descr: "<i8", shape: [6], raw: (0..<6).map { Int64($0) }.withUnsafeBytes { Data($0) })
        for (name, shape, ok) in [("flat", [6, 64], false), ("nhwc", [6, 8, 8, 1], false), ("nchw", [6, 1, 8, 8], true),
                                  ("nhw", [6, 8, 8], true)] {
            let x = tmp.appendingPathComponent("\(name).npy")
            try DataFiles.npyF32(x, shape: shape, values)
            let r = try Run.run(exe, ["train", "--train-x", x.path, "--train-y", y.path, "--epochs", "1", "--quiet"])
            if ok {
                #expect(r.status == 0, "\(name): \(r.stderr)")
            } else {
                #expect(r.status == 1, "\(name) exits 1")
                let s = shape.map(String.init).joined(separator: ", ")
                #expect(r.stderr.contains("\(x.path): expected images of shape (N, 1, 8, 8) or (N, H, W) (NCHW), got (\(s))"),
                        "\(name): \(r.stderr)")
            }
        }
        let csv = tmp.appendingPathComponent("x.csv")
        try values.chunked(64).map { $0.map { String($0) }.joined(separator: ",") }.joined(separator: "\n").appending("\n")
            .write(to: csv, atomically: true, encoding: .utf8)
        let r = try Run.run(exe, ["train", "--train-x", csv.path, "--train-y", y.path, "--epochs", "1", "--quiet"])
        #expect(r.status == 0, "csv: \(r.stderr)")
    }
}

extension Array {
    func chunked(_ k: Int) -> [ArraySlice<Element>] { stride(from: 0, to: count, by: k).map { self[$0..<Swift.min($0 + k, count)] } }
}
