import Foundation
import Testing

/// `trainer report`: a page from a monitored run, its weights and the doctor's output; self-contained (no script,
/// no external resource, the filters a PNG data URI that decodes to the filters picture's size); rendered by headless
/// Chromium with no console error (a control page with a script error proves the console check sees errors).
/// Skipped with the reason when Chromium is not installed (scripts/install-deps.sh installs it).
@Suite(.serialized) struct ReportTests {
    static let work = Paths.tempDir("report")
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A 16-feature (4 x 4) 3-class problem, a monitored trainer, a run with --monitor, the doctor's output.
    static func run() throws -> (exe: String, log: URL, weights: URL, doctor: URL) {
        var rng = TestRandom(seed: 9)
        let n = 300, d = 16
        let x = (0..<(n * d)).map { _ in Float(rng.uniform(-1, 1)) }
        let y: [Int32] = (0..<n).map { i in Int32(x[i * d] > 0.3 ? 0 : x[i * d + 1] > 0 ? 1 : 2) }
        let (xu, yu) = (work.appendingPathComponent("x.npy"), work.appendingPathComponent("y.npy"))
        try DataFiles.npyF32(xu, shape: [n, d], x)
        try DataFiles.npy(yu, descr: "<i4", shape: [n], raw: y.withUnsafeBytes { Data($0) })
        let model = try writeModel("report_mlp", """
            import NNDSL
            let model = Sequential { Linear(16, 12); ReLU(); Linear(12, 8); Tanh(); Linear(8, 3) }
            train(model, input: 16, loss: .crossEntropy, optimizer: SGD(learningRate: 0.1, momentum: 0.9), batchSize: 20, epochs: 3)
            """, in: work)
        let exe = try compileTrainer(model, into: work, flags: ["--monitor"])
        let (log, w, doc) = (work.appendingPathComponent("m.jsonl"), work.appendingPathComponent("w.safetensors"),
                             work.appendingPathComponent("doctor.txt"))
        let data = ["--train-x", xu.path, "--train-y", yu.path]
        let t = try Run.run(exe, ["train"] + data + ["--monitor", "every:5", "--log", log.path, "--save", w.path, "--quiet",
                                                     "--log-every", "1"])
        try #require(t.status == 0, "\(t.stderr)")
        let r = try Run.run(exe, ["doctor"] + data + ["--steps", "50"])
        try r.stdout.write(to: doc, atomically: true, encoding: .utf8)
        return (exe, log, w, doc)
    }

    /// Chromium's DOM dump and its log of the page's console, or nil with the reason it could not run.
    static func render(_ page: URL) throws -> (dom: String, console: [String]) {
        let profile = work.appendingPathComponent("chromium-profile").path
        let r = try Run.run("/usr/bin/timeout", ["120", chromium!, "--headless", "--no-sandbox", "--disable-gpu",
                                                 "--user-data-dir=\(profile)", "--enable-logging=stderr", "--v=0",
                                                 "--dump-dom", page.absoluteString])
        let console = r.stderr.split(separator: "\n").map(String.init).filter { $0.contains("CONSOLE") || $0.contains("Uncaught") }
        return (r.stdout, console)
    }

    @Test func pageIsSelfContainedAndRendersWithoutConsoleErrors() throws {
        let (exe, log, w, doc) = try Self.run()
        let page = Self.work.appendingPathComponent("report.html")
        let r = try Run.run(exe, ["report", "--log", log.path, "--weights", w.path, "--doctor", doc.path, "-o", page.path])
        try #require(r.status == 0, "\(r.stderr)")
        let html = try String(contentsOf: page, encoding: .utf8)
        for part in ["<!DOCTYPE html>", "Loss per logged step", "Update/weight ratio per layer", "‖ΔW‖/‖W‖", "<svg",
                     "data:image/png;base64,", "<span class=\"pass\">PASS  initial loss"] {
            #expect(html.contains(part), "the page lacks \(part)")
        }
        #expect(html.contains("<td>h1</td>") && html.contains("<td>0.weight</td>"), "per-layer tables")
        for outside in ["<script", "http://", "https://", "<link", "@import"] { #expect(!html.contains(outside), "the page has \(outside)") }
        // Axis ticks are round: each chart's numeric tick labels are whole multiples of one step of 1, 2 or 5 × 10^k
        // (decades, "1e-3", on the log axis), not the data's quarter points (0.7032, 1e-1.75).
        for chart in html.components(separatedBy: "<svg").dropFirst() {
            let svg = chart.components(separatedBy: "</svg>")[0]
            let ends = svg.components(separatedBy: "text-anchor=\"end\">").dropFirst().map { $0.prefix { $0 != "<" } }
            let middles = svg.components(separatedBy: "text-anchor=\"middle\">").dropFirst().map { $0.prefix { $0 != "<" } }
            for labels in [ends, middles] {
                let values = labels.compactMap { Double($0) }
                if labels.contains(where: { $0.hasPrefix("1e") }) {
                    #expect(labels.allSatisfy { $0.hasPrefix("1e") && Int($0.dropFirst(2)) != nil }, "log ticks \(labels)")
                    continue
                }
                guard values.count >= 2 else { continue }
                let step = values[1] - values[0], unit = pow(10, (log10(step)).rounded(.down))
                #expect([1.0, 2, 5, 10].contains { abs(step / unit - $0) < 1e-6 }, "tick step \(step) in \(labels)")
                #expect(values.allSatisfy { abs(($0 / step).rounded() * step - $0) < 1e-6 * step }, "ticks off the step: \(labels)")
            }
        }
        // the data URI decodes to a PNG of the filters picture's size: 12 tiles of 4 x 4 at 7x zoom in 4 columns
        let b64 = html.components(separatedBy: "data:image/png;base64,")[1].prefix { $0 != "\"" }
        let png = try #require(Data(base64Encoded: String(b64)), "the data URI is not base64")
        let be32 = { (at: Int) in (0..<4).reduce(0) { $0 << 8 | Int(png[at + $1]) } }
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) && be32(16) == 117 && be32(20) == 88,
                "PNG \(png.prefix(24).map { String($0) })")
        guard Self.chromium != nil else {
            print("ReportTests: skipped the browser check: chromium is not installed (scripts/install-deps.sh installs it)")
            return
        }
        let bad = Self.work.appendingPathComponent("control.html")
        try "<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction()</script></body></html>".write(to: bad, atomically: true, encoding: .utf8)
        let control = try Self.render(bad)
        #expect(!control.console.isEmpty, "the console check saw no error on a page that throws one")
        let shown = try Self.render(page)
        #expect(shown.dom.contains("Training report: report_mlp") && shown.dom.contains("<svg"), "DOM: \(shown.dom.prefix(300))")
        #expect(shown.console.isEmpty, "console: \(shown.console)")
    }

    @Test func errors() throws {
        let (exe, _, _, _) = try Self.run()
        let empty = Self.work.appendingPathComponent("empty.jsonl"), out = Self.work.appendingPathComponent("never.html")
        try "{\"profile\":{}}\n".write(to: empty, atomically: true, encoding: .utf8)
        for (args, status, message) in [(["--log", empty.path, "-o", out.path], 1, "--log \(empty.path): no metrics in it"),
                                        (["--log", "/nonexistent.jsonl", "-o", out.path], 1, "/nonexistent.jsonl"),
                                        (["-o", out.path], 2, "report: needs --log M and --output F.html")] {
            let r = try Run.run(exe, ["report"] + args)
            #expect(r.status == status && r.stderr.contains(message), "\(args): \(r.status) \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out.path))
        }
    }
}
