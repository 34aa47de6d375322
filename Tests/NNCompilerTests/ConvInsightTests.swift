import Foundation
import Testing

/// Issue #20's tools on a convolutional model, as a user runs them on `examples/fashion_mnist_cnn.swiftnn` (which is
/// too slow for the suite): a small CNN (Conv2d 1→4, 3×3, ReLU, MaxPool 2, Linear) compiled with `--monitor`, on a
/// synthetic 4-class problem of 8×8 images (class k: a bright 4×4 square in quadrant k, on noise). `doctor` passes
/// every check, `train --monitor every:N` logs the conv layer's weight, gradient and update norms and the ReLU's
/// activation statistics, and `report` draws the first Conv2d's filters and the per-layer tables from that log.
@Suite(.serialized) struct ConvInsightTests {
    static let work = Paths.tempDir("conv-insight")

    static func data() throws -> [String] {
        var rng = TestRandom(seed: 11)
        let n = 1200, side = 8
        var x = [Float](repeating: 0, count: n * side * side), y = [Int32](repeating: 0, count: n)
        for i in 0..<n {
            let k = i % 4
            y[i] = Int32(k)
            for p in 0..<(side * side) { x[i * side * side + p] = Float(rng.uniform(0, 0.3)) }
            let (r0, c0) = ((k / 2) * 4, (k % 2) * 4)
            for r in r0..<(r0 + 4) { for c in c0..<(c0 + 4) { x[i * side * side + r * side + c] += 0.7 } }
        }
        let (xu, yu) = (work.appendingPathComponent("x.npy"), work.appendingPathComponent("y.npy"))
        try DataFiles.npyF32(xu, shape: [n, 1, side, side], x)
        try DataFiles.npy(yu, descr: "<i4", shape: [n], raw: y.withUnsafeBytes { Data($0) })
        return ["--train-x", xu.path, "--train-y", yu.path]
    }

    static func trainer() throws -> String {
        let model = try writeModel("insight_cnn", """
            import NNDSL
            let model = Sequential {
                Conv2d(1, 4, kernelSize: 3, padding: 1)
                ReLU()
                MaxPool2d(2)
                Flatten()
                Linear(64, 4)
            }
            train(model, input: [1, 8, 8], loss: .crossEntropy, optimizer: Adam(learningRate: 1e-2), batchSize: 32,
                  epochs: 2, seed: 1)
            """, in: work)
        return try compileTrainer(model, into: work, flags: ["--monitor"])
    }

    @Test func doctorMonitorAndReportWorkOnACNN() throws {
        let exe = try Self.trainer(), data = try Self.data()
        // doctor: every check runs and passes on this healthy model
        let d = try Run.run(exe, ["doctor"] + data)
        print("ConvInsightTests: doctor → exit \(d.status)\n\(d.stdout)\(d.stderr)")
        #expect(d.status == 0, "\(d.stdout)\(d.stderr)")
        for check in ["initial loss", "overfit", "gradcheck", "update ratio", "learning", "dead units", "lr range test"] {
            let line = d.stdout.split(separator: "\n").first { $0.dropFirst(6).hasPrefix(check) }.map(String.init) ?? "<no \(check)>"
            #expect(line.hasPrefix("PASS"), "\(line)")
        }
        let doctorText = Self.work.appendingPathComponent("doctor.txt")
        try d.stdout.write(to: doctorText, atomically: true, encoding: .utf8)

        // train --monitor: the conv layer's statistics in the log
        let log = Self.work.appendingPathComponent("m.jsonl"), w = Self.work.appendingPathComponent("w.safetensors")
        try? FileManager.default.removeItem(at: log)
        let t = try Run.run(exe, ["train"] + data + ["--monitor", "every:10", "--log", log.path, "--save", w.path, "--quiet"])
        #expect(t.status == 0, "\(t.stderr)")
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        let monitored = lines.filter { $0.contains("\"update_ratio/") }
        #expect(monitored.count >= 6, "2 epochs of 34 steps at every:10: \(monitored.count) monitor lines")
        let last = try #require(monitored.last.map(String.init))
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        for key in ["w_norm/0.weight", "g_norm/0.weight", "update_ratio/0.weight", "update_ratio/0.bias", "update_ratio/4.weight",
                    "act_mean/h2", "act_std/h2", "act_zero/h2", "act_dead/h2"] {
            let v = stats[key] as? Double
            #expect(v != nil && v!.isFinite, "\(key) in \(last.prefix(600))")
        }
        if let ratio = stats["update_ratio/0.weight"] as? Double { #expect(ratio > 0 && ratio < 1, "conv update ratio \(ratio)") }
        // Conv2d + ReLU + MaxPool2d run as one kernel, so the ReLU's output (h1) is never stored: its statistics are
        // taken on the pooled map (h2), still a ReLU's (docs/trainer.md, "Monitoring").
        #expect(stats["act_mean/h1"] == nil && stats["act_mean/h0"] == nil, "no statistics of values the fused kernel never writes")

        // report: the filters of the Conv2d and the per-layer tables from the monitor
        let page = Self.work.appendingPathComponent("report.html")
        let r = try Run.run(exe, ["report", "--log", log.path, "--weights", w.path, "--doctor", doctorText.path, "-o", page.path])
        #expect(r.status == 0, "\(r.stderr)")
        let html = try String(contentsOf: page, encoding: .utf8)
        #expect(html.contains("First-layer filters") && html.contains("4 filters of '0.weight'"), "the conv filters are drawn")
        #expect(html.contains("<td>0.weight</td>") && html.contains("data:image/png;base64,"), "per-layer table and the picture")
        #expect(html.contains("<span class=\"pass\">PASS  lr range test"), "the doctor's verdicts")
    }
}
