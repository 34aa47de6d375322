import Foundation
import Testing
@testable import NNCompiler

/// A `--monitor` log through `nncc plot`: the SVG has the update-ratio panel (log axis, a series per parameter) and a
/// heat map per activation histogram; `nncc plot --tensorboard` writes its scalars and histograms, which
/// TensorBoard's own reader finds field by field (Tests/Reference/tensorboard_check.py; skipped with the reason
/// when Python lacks tensorboard).
@Suite(.serialized) struct MonitorPlotTests {
    static let work = Paths.tempDir("monitor_plot")

    /// A monitored run of model CLS (MonitorTests' trainer): its log.
    static func log() throws -> URL {
        let exe = try MonitorTests.trainer(in: work)
        let log = work.appendingPathComponent("m.jsonl")
        let r = try MonitorTests.train(exe, ["--epochs", "3", "--batch", "16", "--monitor", "every:2", "--log", log.path])
        try #require(r.status == 0, "\(r.stderr)")
        return log
    }

    @Test func svgDrawsRatiosAndHistograms() throws {
        let metrics = try MetricsLog(contentsOf: try Self.log().path)
        let ratio = try #require(metrics.monitorPanels().first, "no update-ratio panel")
        #expect(ratio.logY && ratio.series.map(\.label) == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"])
        #expect(ratio.series.allSatisfy { $0.points.map(\.x) == [2, 4, 6, 8, 10, 12, 14] }, "\(ratio.series.map(\.points))")
        #expect(metrics.histogramPanels().map(\.title) == ["Histogram of act/h1 over steps", "Histogram of act/h3 over steps",
                                                          "Histogram of act/h4 over steps"])
        let svg = metrics.svg(title: "t")
        #expect(svg.contains("data-title=\"Update/weight ratio per layer (log scale)\"") && svg.contains("data-series=\"update_ratio/0.weight\""))
        // 7 columns of up to 30 shaded buckets per heat map
        let h1 = try #require(svg.components(separatedBy: "data-title=\"Histogram of act/h1 over steps\"").last)
        let cells = h1.components(separatedBy: "</g>")[0].components(separatedBy: "fill=\"#1f77b4\"").count - 1
        #expect(cells >= 7 && cells <= 7 * 30, "\(cells) cells")
    }

    @Test func tensorBoardGetsTheMonitor() throws {
        let metrics = try Self.log(), run = Self.work.appendingPathComponent("runs/monitor")
        let r = try Run.run(Paths.nncc, ["plot", "--tensorboard", run.path, metrics.path])
        try #require(r.status == 0, "\(r.stderr)")
        if let why = pythonLacks(["numpy", "tensorboard"]) {
            print("MonitorPlotTests: skipped the check with TensorBoard's reader: \(why)")
            return
        }
        let checker = Paths.repo.appendingPathComponent("Tests/Reference/tensorboard_check.py").path
        let c = try Run.run("/usr/bin/env", ["python3", checker, run.path, metrics.path])
        #expect(c.status == 0 && c.stdout.contains("and 3 histogram tags match"), "\(c.stdout)\(c.stderr)")
        print("MonitorPlotTests: \(c.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
    }
}
