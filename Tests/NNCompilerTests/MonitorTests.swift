import Foundation
import Testing

/// `train --monitor every:N` on a trainer compiled with `nncc compile --monitor`: the statistics of one SGD step of
/// model CLS against the NumPy reference (Tests/Reference/reference_monitor.py → Tests/Fixtures/monitor.json), the
/// cadence of the lines, and the errors. Tolerances: norms, ratios, means and stds 1e-4 relative + 1e-6 absolute
/// (a float32 trainer against float64); fractions exact up to one value in the batch; each histogram bucket within one
/// count of the reference (a float32 value on a bucket edge may fall on either side), the counts summing to `num`.
@Suite(.serialized) struct MonitorTests {
    static let work = Paths.tempDir("monitor")
    static let traj = Paths.fixtures.appendingPathComponent("trajectory").path

    static func trainer(monitor: Bool = true, in dir: URL = work, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let model = try writeModel("cls_monitor", """
            import NNDSL
            let model = Sequential { Linear(20, 16); ReLU(); Linear(16, 12); Tanh(); Linear(12, 4) }
            train(model, input: 20, loss: .crossEntropy, optimizer: SGD(learningRate: 0.1), batchSize: 16, epochs: 3)
            """, in: dir)
        return try compileTrainer(model, into: dir, flags: monitor ? ["--monitor"] : [], sourceLocation: sourceLocation)
    }

    static func train(_ exe: String, _ extra: [String]) throws -> Run {
        try Run.run(exe, ["train", "--train-x", "\(traj)/cls_x.npy", "--train-y", "\(traj)/cls_y.npy", "--init",
                          "\(traj)/cls_init.safetensors", "--no-shuffle", "--val-split", "0", "--quiet"] + extra)
    }

    func near(_ got: Any?, _ want: Any?, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let g = got as? Double, let w = want as? Double else {
            Issue.record("\(what): got \(String(describing: got)), reference \(String(describing: want))", sourceLocation: sourceLocation)
            return
        }
        #expect(close(g, w, rtol: 1e-4, atol: 1e-6), "\(what): \(g), reference \(w)", sourceLocation: sourceLocation)
    }

    @Test func oneStepMatchesNumPy() throws {
        let exe = try Self.trainer()
        let log = Self.work.appendingPathComponent("m.jsonl")
        let r = try Self.train(exe, ["--steps", "1", "--batch", "16", "--monitor", "every:1", "--log", log.path])
        try #require(r.status == 0, "\(r.stderr)")
        let ref = try readJSON(Paths.fixtures.appendingPathComponent("monitor.json"))
        let line = try #require(try readJSONL(log).first { $0["w_norm/0.weight"] != nil }, "no monitor line in the log")
        #expect(line["step"] as? Int == 1)
        for (name, v) in ref["params"] as! [String: [String: Double]] {
            for key in ["w_norm", "g_norm", "update_ratio"] { near(line["\(key)/\(name)"], v[key], "\(key)/\(name)") }
        }
        let hists = try #require(line["histograms"] as? [String: [String: Any]])
        for (name, a) in ref["acts"] as! [String: [String: Any]] {
            let n = Double(a["num"] as! Int)
            near(line["act_mean/\(name)"], a["mean"], "act_mean/\(name)")
            near(line["act_std/\(name)"], a["std"], "act_std/\(name)")
            for (key, ours) in [("zero", "act_zero"), ("dead", "act_dead"), ("saturated", "act_saturated")] {
                guard let want = a[key] as? Double else { #expect(line["\(ours)/\(name)"] == nil, "\(ours)/\(name)"); continue }
                let got = try #require(line["\(ours)/\(name)"] as? Double, "\(ours)/\(name) missing")
                #expect(abs(got - want) <= 1 / n + 1e-12, "\(ours)/\(name): \(got), reference \(want)")
            }
            let h = try #require(hists["act/\(name)"], "histogram act/\(name) missing")
            for key in ["min", "max", "sum", "sum_squares"] { near(h[key], a[key], "act/\(name) \(key)") }
            let got = h["bucket"] as! [Double], want = (a["bucket"] as! [Int]).map(Double.init)
            #expect(got.count == want.count && got.reduce(0, +) == n, "act/\(name): buckets \(got)")
            #expect(zip(got, want).allSatisfy { abs($0 - $1) <= 1 }, "act/\(name): buckets \(got), reference \(want)")
            for (g, w) in zip(h["bucket_limit"] as! [Double], a["bucket_limit"] as! [Double]) { near(g, w, "act/\(name) limit") }
        }
    }

    /// every:N logs steps N, 2N, …; the training itself is the same as without --monitor (the same losses).
    @Test func everyNStepsAndTheSameTraining() throws {
        let exe = try Self.trainer()
        let (a, b) = (Self.work.appendingPathComponent("a.jsonl"), Self.work.appendingPathComponent("b.jsonl"))
        let ra = try Self.train(exe, ["--epochs", "2", "--batch", "16", "--log-every", "1", "--monitor", "every:3", "--log", a.path])
        let rb = try Self.train(exe, ["--epochs", "2", "--batch", "16", "--log-every", "1", "--log", b.path])
        try #require(ra.status == 0 && rb.status == 0, "\(ra.stderr)\(rb.stderr)")
        let la = try readJSONL(a), lb = try readJSONL(b)
        #expect(la.filter { $0["w_norm/0.weight"] != nil }.compactMap { $0["step"] as? Int } == [3, 6, 9])
        let losses = { (l: [[String: Any]]) in l.compactMap { $0["loss"] as? Double } }
        #expect(losses(la) == losses(lb) && losses(la).count == 10)
    }

    @Test func errors() throws {
        let exe = try Self.trainer()
        let log = Self.work.appendingPathComponent("e.jsonl").path
        for (args, message) in [(["--monitor", "every:0", "--log", log], "--monitor: expected every:N with N a positive integer, got 'every:0'"),
                                (["--monitor", "3", "--log", log], "--monitor: expected every:N (a statistics line every N steps), got '3'"),
                                (["--monitor", "every:2"], "--monitor: needs --log M (the statistics go to the JSON Lines log)")] {
            let r = try Self.train(exe, args)
            #expect(r.status == 2 && r.stderr.contains(message), "\(args): \(r.status) \(r.stderr)")
        }
        let plain = try Self.trainer(monitor: false)
        let r = try Self.train(plain, ["--monitor", "every:2", "--log", log])
        #expect(r.status == 2 && r.stderr.contains("recompile the model with 'nncc compile --monitor'"), "\(r.stderr)")
    }
}
