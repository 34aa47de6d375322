import Foundation
import Testing

/// `trainer doctor` on a synthetic 4-class problem (x ~ U(−√3, √3)²⁰, y = argmax(x·W_true) for a fixed W_true, 2000
/// samples) and an MLP 20-64-4 with ReLU and SGD with momentum: the healthy model passes every check (exit 0); each
/// deliberately broken run fails the check that should catch it (exit 1) and says what it usually means: 10× the
/// init scale (initial loss), --lr 10 (update ratio and the LR range test), shuffled labels (learning). The LR range
/// test's suggestion lands in the band where this problem trains: between 1e-3 and 1, and the doctor's own learning
/// check passes at it.
@Suite(.serialized) struct DoctorTests {
    static let work = Paths.tempDir("doctor")

    /// The data files, labels as given or shuffled.
    static func data(shuffled: Bool = false) throws -> [String] {
        var rng = TestRandom(seed: 5)
        let n = 2000, d = 20, c = 4
        let w = (0..<(d * c)).map { _ in rng.uniform(-1, 1) }
        let x = (0..<(n * d)).map { _ in Float(rng.uniform(-3.0.squareRoot(), 3.0.squareRoot())) }
        var y: [Int32] = (0..<n).map { i in
            let scores = (0..<c).map { k in (0..<d).reduce(0.0) { $0 + Double(x[i * d + $1]) * w[$1 * c + k] } }
            return Int32(scores.indices.max { scores[$0] < scores[$1] }!)
        }
        if shuffled { for i in stride(from: n - 1, to: 0, by: -1) { y.swapAt(i, Int(rng.next() % UInt64(i + 1))) } }
        let (xu, yu) = (work.appendingPathComponent("x.npy"), work.appendingPathComponent(shuffled ? "y_shuffled.npy" : "y.npy"))
        try DataFiles.npyF32(xu, shape: [n, d], x)
        try DataFiles.npy(yu, descr: "<i4", shape: [n], raw: y.withUnsafeBytes { Data($0) })
        return ["--train-x", xu.path, "--train-y", yu.path]
    }

    /// The trainer, its weights drawn from U(±scale/√fanIn) (PyTorch's default at scale 1).
    static func trainer(scale: Double = 1, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let init1 = "weightInit: .uniform(-\(scale) / 20.0.squareRoot(), \(scale) / 20.0.squareRoot())"
        let init2 = "weightInit: .uniform(-\(scale) / 8.0, \(scale) / 8.0)"
        let model = try writeModel("doctor_mlp_\(Int(scale))", """
            import NNDSL
            let model = Sequential { Linear(20, 64, \(init1)); ReLU(); Linear(64, 4, \(init2)) }
            train(model, input: 20, loss: .crossEntropy, optimizer: SGD(learningRate: 0.1, momentum: 0.9), batchSize: 32,
                  epochs: 1, seed: 3)
            """, in: work)
        return try compileTrainer(model, into: work, flags: ["--monitor"], sourceLocation: sourceLocation)
    }

    static func doctor(_ exe: String, _ args: [String]) throws -> Run {
        let r = try Run.run(exe, ["doctor"] + args)
        print("DoctorTests: doctor \(args.suffix(2).joined(separator: " ")) → exit \(r.status)\n\(r.stdout)")
        return r
    }

    /// The verdict line of a check ("PASS  overfit …").
    static func verdict(_ r: Run, _ check: String) -> String {
        r.stdout.split(separator: "\n").first { $0.dropFirst(6).hasPrefix(check) }.map(String.init) ?? "<no \(check) line>"
    }

    @Test func healthyModelPasses() throws {
        let exe = try Self.trainer(), svg = Self.work.appendingPathComponent("lr.svg")
        let r = try Self.doctor(exe, try Self.data() + ["--lr-curve", svg.path])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        for check in ["initial loss", "overfit", "gradcheck", "update ratio", "learning", "dead units", "lr range test"] {
            #expect(Self.verdict(r, check).hasPrefix("PASS"), "\(Self.verdict(r, check))")
        }
        let text = try String(contentsOf: svg, encoding: .utf8)
        #expect(text.hasPrefix("<?xml") && text.contains("<polyline") && text.hasSuffix("</svg>\n"))
    }

    @Test func tenfoldInitScaleFailsTheInitialLoss() throws {
        let r = try Self.doctor(try Self.trainer(scale: 10), try Self.data())
        #expect(r.status == 1)
        #expect(Self.verdict(r, "initial loss").hasPrefix("FAIL"), "\(Self.verdict(r, "initial loss"))")
        #expect(r.stdout.contains("usually: a bad init"))
    }

    @Test func learningRateTenFails() throws {
        let r = try Self.doctor(try Self.trainer(), try Self.data() + ["--lr", "10"])
        #expect(r.status == 1)
        #expect(Self.verdict(r, "update ratio").hasPrefix("FAIL") || Self.verdict(r, "lr range test").hasPrefix("FAIL"),
                "\(r.stdout)")
        #expect(r.stdout.contains("usually: the learning rate is too high"))
    }

    @Test func shuffledLabelsFailLearning() throws {
        let r = try Self.doctor(try Self.trainer(), try Self.data(shuffled: true))
        #expect(r.status == 1)
        #expect(Self.verdict(r, "learning").hasPrefix("FAIL"), "\(Self.verdict(r, "learning"))")
        #expect(r.stdout.contains("usually: labels that do not match their inputs"))
    }

    /// Smith's test suggests a rate in [1e-3, 1] here, and a run at that rate learns.
    @Test func lrFinderSuggestsAGoodRate() throws {
        let exe = try Self.trainer()
        let r = try Self.doctor(exe, try Self.data())
        let line = Self.verdict(r, "lr range test")
        let lr = try #require(line.range(of: "suggests --lr ").map { Double(line[$0.upperBound...].prefix { $0 != " " }) ?? -1 },
                              "\(line)")
        #expect(lr >= 1e-3 && lr <= 1, "\(line)")
        let again = try Self.doctor(exe, try Self.data() + ["--lr", "\(lr)"])
        #expect(Self.verdict(again, "learning").hasPrefix("PASS"), "\(Self.verdict(again, "learning"))")
    }

    /// A regression (examples/sine_regression.swiftnn on y = sin x): passes; shuffled targets fail learning (R²).
    @Test func regressionPassesAndShuffledTargetsFail() throws {
        let exe = try compileTrainer(Paths.examples.appendingPathComponent("sine_regression.swiftnn"), into: Self.work,
                                     flags: ["--monitor"])
        var rng = TestRandom(seed: 8)
        let x = (0..<1000).map { _ in Float(rng.uniform(-3, 3)) }
        var y = x.map { Float(sin(Double($0))) }
        var args: [[String]] = []
        for name in ["sine", "sine_shuffled"] {
            if name == "sine_shuffled" { for i in stride(from: 999, to: 0, by: -1) { y.swapAt(i, Int(rng.next() % UInt64(i + 1))) } }
            let (xu, yu) = (Self.work.appendingPathComponent("\(name)_x.npy"), Self.work.appendingPathComponent("\(name)_y.npy"))
            try DataFiles.npyF32(xu, shape: [1000, 1], x)
            try DataFiles.npyF32(yu, shape: [1000, 1], y)
            args.append(["--train-x", xu.path, "--train-y", yu.path])
        }
        let healthy = try Self.doctor(exe, args[0]), shuffled = try Self.doctor(exe, args[1])
        #expect(healthy.status == 0, "\(healthy.stdout)")
        #expect(shuffled.status == 1 && Self.verdict(shuffled, "learning").hasPrefix("FAIL"), "\(shuffled.stdout)")
        #expect(shuffled.stdout.contains("usually: targets that do not match their inputs"))
    }

    @Test func errors() throws {
        let exe = try Self.trainer()
        let r = try Run.run(exe, ["doctor"])
        #expect(r.status == 2 && r.stderr.contains("doctor: needs --data DIR"), "\(r.stderr)")
        let bad = try Run.run(exe, ["doctor", "--train-x", "/nonexistent.npy", "--train-y", "/nonexistent.npy"])
        #expect(bad.status == 1 && bad.stderr.contains("/nonexistent.npy"), "\(bad.stderr)")
    }
}
