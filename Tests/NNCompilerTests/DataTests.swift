import Foundation
import Testing

/// Bring your own data, end to end on compiled trainers: examples/iris.swiftnn on its CSV (a header, a column of
/// species names), the input statistics against NumPy's (Tests/Fixtures/data_stats.json, written by
/// Tests/Reference/reference_data.py), predict applying them exactly as the weights say, and a schedule in epochs.
@Suite(.serialized) struct DataTests {
    static let work = Paths.tempDir("data")
    static let data = Paths.examples.appendingPathComponent("data")
    static let stats = try? readJSON(Paths.fixtures.appendingPathComponent("data_stats.json"))
    static let iris: String = {
        (try? compileTrainer(Paths.examples.appendingPathComponent("iris.swiftnn"), into: work)) ?? "missing"
    }()

    func file(_ name: String) -> URL { Self.work.appendingPathComponent(name) }

    /// The `__metadata__` strings of a safetensors file.
    func metadata(_ url: URL) throws -> [String: String] {
        let d = try Data(contentsOf: url)
        let n = d.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: d.subdata(in: 8..<(8 + n))) as! [String: Any]
        return header["__metadata__"] as? [String: String] ?? [:]
    }

    func numbers(_ s: String?) -> [Double] { (s ?? "").split(separator: ",").compactMap { Double($0) } }

    /// Train on iris.csv by its label column, validate on iris_test.csv, then eval and predict --labels by name.
    @Test func irisFromOneCSVEndToEnd() throws {
        let w = file("iris.st"), log = file("iris.jsonl"), pred = file("p.csv")
        let train = try Run.run(Self.iris, ["train", "--train-x", Self.data.appendingPathComponent("iris.csv").path,
                                            "--label-column", "species", "--val-x", Self.data.appendingPathComponent("iris_test.csv").path,
                                            "--normalize", "feature", "--save", w.path, "--log", log.path, "--log-every", "1", "--quiet"])
        try #require(train.status == 0, "\(train.stderr)")
        let epochs = try readJSONL(log).filter { $0["train_loss"] != nil }
        let valAcc = try #require(epochs.last?["val_acc"] as? Double)
        #expect(epochs.count == 40 && valAcc >= 0.9, "an Iris-like set is nearly separable: val_acc \(valAcc)")

        // The statistics, the class names and the range are NumPy's.
        let meta = try metadata(w), iris = try #require(Self.stats?["iris"] as? [String: Any])
        let mean = numbers(meta["input.mean"]), std = numbers(meta["input.std"])
        let npMean = iris["mean"] as! [Double], npStd = iris["std"] as! [Double]
        #expect(mean.count == 4 && zip(mean, npMean).allSatisfy { close($0, $1, rtol: 1e-6) }, "\(mean) vs NumPy \(npMean)")
        #expect(std.count == 4 && zip(std, npStd).allSatisfy { close($0, $1, rtol: 1e-6) }, "\(std) vs NumPy \(npStd)")
        #expect(meta["input.scale"] == "auto" && meta["input.normalize"] == "feature" && Double(meta["input.max"] ?? "") == iris["max"] as? Double)
        #expect([meta["class.0"], meta["class.1"], meta["class.2"]].compactMap { $0 } == iris["classes"] as! [String] && meta["classes"] == "3")

        // eval on the validation file agrees with training's last epoch; predict --labels writes names, as accurate.
        let test = Self.data.appendingPathComponent("iris_test.csv")
        let ev = try Run.run(Self.iris, ["eval", "--weights", w.path, "--test-x", test.path, "--label-column", "species"])
        #expect(ev.status == 0 && ev.stdout.contains(String(format: "test_acc %.4f", valAcc)), "\(ev.stdout)\(ev.stderr)")
        let p = try Run.run(Self.iris, ["predict", "--weights", w.path, "--input", test.path, "--label-column", "species",
                                        "--labels", "--output", pred.path])
        try #require(p.status == 0 && !p.stderr.contains("warning"), "\(p.stderr)")
        let names = try String(contentsOf: pred, encoding: .utf8).split(separator: "\n").map(String.init)
        let truth = try String(contentsOf: test, encoding: .utf8).split(separator: "\n").dropFirst().map { String($0.split(separator: ",").last!) }
        #expect(names.first == "label" && names.count == truth.count + 1)
        let right = zip(names.dropFirst(), truth).filter { $0 == $1 }.count
        #expect(abs(Double(right) / Double(truth.count) - valAcc) < 1e-9, "predict --labels is as accurate as eval: \(right)/\(truth.count)")

        // The schedule in epochs: 150 rows at batch 16 are 10 steps an epoch, so a warmup of 20 steps, then a cosine
        // of 380 that ends at the last step.
        let lrs = try readJSONL(log).compactMap { $0["step"] != nil ? $0["lr"] as? Double : nil }
        #expect(lrs.count == 400)
        for (t, lr) in lrs.enumerated() {
            let warm = min(1, Double(t + 1) / 20), c = Double(max(t - 20, 0))
            let e = 0.02 * warm * (1 + cos(Double.pi * min(c, 380) / 380)) / 2
            #expect(close(lr, e, rtol: 1e-7, atol: 1e-12), "step \(t + 1): lr \(lr), expected \(e)")
        }
    }

    /// predict applies the weights' preprocessing exactly: a linear classifier's probabilities are softmax(W·x' + b)
    /// with x' = (x·scale − mean)/std computed here from the file's metadata.
    @Test func predictAppliesTheSavedPreprocessing() throws {
        let model = try writeModel("iris_linear", """
            import NNDSL
            let model = Sequential { Linear(4, 3) }
            train(model, input: 4, loss: .crossEntropy, optimizer: SGD(learningRate: 0.1), batchSize: 16, epochs: 3)
            """, in: Self.work)
        let exe = try compileTrainer(model, into: Self.work)
        let csv = Self.data.appendingPathComponent("iris.csv"), w = file("lin.st"), out = file("lin.csv")
        let t = try Run.run(exe, ["train", "--train-x", csv.path, "--label-column", "species", "--normalize", "feature",
                                  "--scale", "1/2", "--save", w.path, "--quiet"])
        try #require(t.status == 0, "\(t.stderr)")
        let p = try Run.run(exe, ["predict", "--weights", w.path, "--input", csv.path, "--label-column", "species", "--output", out.path])
        try #require(p.status == 0, "\(p.stderr)")
        let meta = try metadata(w), weights = try readSafetensors(w)
        #expect(meta["input.scale"] == "1/2")
        let mean = numbers(meta["input.mean"]), std = numbers(meta["input.std"])
        let W = weights["0.weight"]!.data, b = weights["0.bias"]!.data
        let rows = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",").prefix(4).map { Double($0)! } }
        let probs = try String(contentsOf: out, encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",").map { Double($0)! } }
        #expect(probs.count == rows.count)
        var worst = 0.0
        for (x, got) in zip(rows, probs) {
            let xs = (0..<4).map { (Double(Float(x[$0]) / 2) - mean[$0]) / std[$0] }
            let z = (0..<3).map { k in Double(b[k]) + (0..<4).reduce(0.0) { $0 + Double(W[k * 4 + $1]) * xs[$1] } }
            let e = z.map { Foundation.exp($0 - z.max()!) }, s = e.reduce(0, +)
            worst = max(worst, zip(e, got).map { abs($0 / s - $1) }.max()!)
        }
        #expect(worst < 1e-5, "predict's probabilities against softmax(W·(x/2 − μ)/σ + b): largest difference \(worst)")
    }

    /// --normalize channel on uint8 images: per-channel statistics of x/255, NumPy's.
    @Test func channelStatisticsOfImages() throws {
        let images = try #require(Self.stats?["images"] as? [String: Any])
        let shape = images["shape"] as! [Int], bytes = (images["bytes"] as! [Int]).map(UInt8.init)
        let x = file("img_x.npy"), y = file("img_y.npy"), w = file("img.st")
        try DataFiles.npy(x, descr: "|u1", shape: shape, raw: Data(bytes))
        try DataFiles.npy(y, descr: "<i4", shape: [shape[0]], raw: Data((0..<shape[0]).flatMap { withUnsafeBytes(of: Int32($0 % 2).littleEndian, Array.init) }))
        let model = try writeModel("tiny_images", """
            import NNDSL
            let model = Sequential { Flatten(); Linear(24, 2) }
            train(model, input: [2, 3, 4], loss: .crossEntropy, optimizer: SGD(learningRate: 0.1), batchSize: 4, epochs: 1)
            """, in: Self.work)
        let exe = try compileTrainer(model, into: Self.work)
        let r = try Run.run(exe, ["train", "--train-x", x.path, "--train-y", y.path, "--val-split", "0", "--normalize", "channel",
                                  "--save", w.path, "--quiet"])
        try #require(r.status == 0, "\(r.stderr)")
        let meta = try metadata(w)
        let mean = numbers(meta["input.mean"]), std = numbers(meta["input.std"])
        let npMean = images["mean"] as! [Double], npStd = images["std"] as! [Double]
        #expect(meta["input.scale"] == "auto" && meta["input.normalize"] == "channel", "\(meta)")
        #expect(mean.count == 2 && zip(mean, npMean).allSatisfy { close($0, $1, rtol: 1e-6) }, "\(mean) vs NumPy \(npMean)")
        #expect(std.count == 2 && zip(std, npStd).allSatisfy { close($0, $1, rtol: 1e-6) }, "\(std) vs NumPy \(npStd)")
    }
}
