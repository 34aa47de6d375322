import Foundation
import NNIR
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import NNCompiler

/// `nncc plot`: the trainer's JSONL as an SVG that parses as XML, has every logged series with coordinates inside
/// its panel, and bad input (missing file, not JSONL, no metrics) as one error line with no output file.
@Suite struct PlotTests {
    /// 120 steps (a null loss at step 7), 3 epochs with val and test, one step logged twice (a resumed run's log)
    /// and a profile line, as the trainer writes them.
    static let jsonl: String = {
        var lines: [String] = []
        for s in 1...120 {
            let loss = s == 7 ? "null" : String(2.3 * exp(-Double(s) / 40) + 0.1)
            lines.append("{\"step\":\(s),\"epoch\":\((s - 1) / 40 + 1),\"loss\":\(loss),\"lr\":\(0.1 * pow(0.96, Double(s)))}")
            if s % 40 == 0 {
                let e = s / 40
                lines.append("{\"epoch\":\(e),\"train_loss\":\(1.0 / Double(e)),\"val_loss\":\(1.2 / Double(e)),\"val_acc\":\(0.5 + 0.1 * Double(e)),"
                             + "\"test_loss\":\(1.3 / Double(e)),\"test_acc\":\(0.45 + 0.1 * Double(e)),\"seconds\":0.5}")
            }
        }
        lines.insert("{\"step\":40,\"epoch\":1,\"loss\":0.5,\"lr\":0.04}", at: 60)
        lines.append("{\"profile\":{\"epochs\":3,\"steps\":120}}")
        return lines.joined(separator: "\n") + "\n"
    }()

    @Test func parsesStepsAndEpochs() throws {
        let log = try MetricsLog(jsonl: Self.jsonl, path: "m.jsonl")
        #expect(log.steps["loss"]?.count == 120 && log.steps["lr"]?.count == 120, "a step logged twice counts once")
        #expect(log.steps["loss"]?[6].y == nil, "null is a gap")
        #expect(log.steps["loss"]?[39].y == 0.5, "the later line of a step logged twice wins")
        #expect(Set(log.epochs.keys) == ["train_loss", "val_loss", "test_loss", "val_acc", "test_acc", "seconds"], "every number is kept")
        #expect(log.epochs["val_acc"]?.map(\.x) == [1, 2, 3])
    }

    @Test func svgHasEverySeriesInsideItsPanel() throws {
        let svg = try MetricsLog(jsonl: Self.jsonl, path: "m.jsonl").svg(title: "run <1> & co")
        let root = try #require(XMLNode.parse(svg), "the SVG is well-formed XML")
        #expect(root.name == "svg" && root["width"] == "1000" && root["xmlns"] == "http://www.w3.org/2000/svg")
        let panels = root.children.filter { $0.name == "g" && $0["class"] == "panel" }
        #expect(panels.compactMap { $0["data-title"] } == ["Loss per step", "Loss per epoch", "Accuracy per epoch", "Learning rate per step (log scale)"])
        var seen: [String] = []
        for panel in panels {
            let frame = try #require(panel.children.first { $0["class"] == "frame" })
            let (fx, fy, fw, fh) = (frame.number("x"), frame.number("y"), frame.number("width"), frame.number("height"))
            #expect(fw > 300 && fh > 200)
            for g in panel.children where g["class"] == "series" {
                let name = g["data-series"] ?? "?"
                seen.append(name)
                let lines = g.children.filter { $0.name == "polyline" }
                let points = lines.flatMap { ($0["points"] ?? "").split(separator: " ").map { $0.split(separator: ",").map { Double($0)! } } }
                #expect(points.allSatisfy { $0[0] >= fx - 0.01 && $0[0] <= fx + fw + 0.01 && $0[1] >= fy - 0.01 && $0[1] <= fy + fh + 0.01 },
                        "\(name): every point inside the frame")
                #expect(zip(points, points.dropFirst()).allSatisfy { $0[0] < $1[0] }, "\(name): x increases")
                if name == "loss" { #expect(lines.count == 2 && points.count == 119, "the null loss splits the line") }
                if name != "loss" && (name.hasSuffix("_acc") || name.hasSuffix("_loss")) { #expect(points.count == 3, "\(name)") }
                if name == "train_loss" {
                    #expect(points[0][1] < points[2][1], "a falling loss goes down the screen (SVG y grows downwards)")
                    #expect(abs(points[0][0] - fx) < 0.01 && abs(points[2][0] - (fx + fw)) < 0.01, "epochs 1…3 span the axis")
                }
            }
            #expect(panel.children.filter { $0.name == "text" && ($0["class"] ?? "").hasPrefix("tick") }.count >= 6, "ticks on both axes")
            let legend = panel.children.first { $0["class"] == "legend" }
            #expect((legend?.children.filter { $0.name == "text" }.count ?? 0) >= 1, "a legend")
        }
        #expect(Set(seen) == ["loss", "loss_smoothed", "train_loss", "val_loss", "test_loss", "val_acc", "test_acc", "lr"])
        let yLabels = panels.map { $0.children.first { $0["class"] == "axis-label y" }?.text }
        #expect(yLabels == ["loss", "loss", "accuracy", "learning rate"], "every y-axis says what it measures")
        #expect(panels.allSatisfy { ($0.children.first { $0["class"] == "axis-label y" }?["transform"] ?? "").hasPrefix("rotate(-90") })
        // The best epoch (the lowest val_loss, 1.2/e: epoch 3) is marked on both per-epoch panels, at epoch 3's x.
        for panel in panels {
            let marks = panel.children.filter { $0["class"] == "best-epoch" }
            let perEpoch = (panel["data-title"] ?? "").hasSuffix("per epoch")
            #expect(marks.count == (perEpoch ? 1 : 0), "\(panel["data-title"] ?? "")")
            guard let mark = marks.first else { continue }
            #expect(mark["data-epoch"] == "3" && mark["data-metric"] == "val_loss")
            let frame = try #require(panel.children.first { $0["class"] == "frame" })
            let line = try #require(mark.children.first { $0.name == "line" })
            #expect(abs(line.number("x1") - (frame.number("x") + frame.number("width"))) < 0.01, "epoch 3 is the right edge")
            #expect(mark.children.first { $0.name == "text" }?.text == "best: epoch 3, val_loss 0.4")
            // The label sits at the top, right-aligned at the right edge (about 6.5 px a character): the legend,
            // whose best corner by the points alone is the top right here, must not cover it.
            let label = try #require(mark.children.first { $0.name == "text" })
            let (lx1, ly) = (label.number("x"), label.number("y"))
            let lx0 = lx1 - 6.5 * Double("best: epoch 3, val_loss 0.4".count)
            let box = try #require(panel.children.first { $0["class"] == "legend" }?.children.first { $0.name == "rect" })
            let (bx, by, bw, bh) = (box.number("x"), box.number("y"), box.number("width"), box.number("height"))
            #expect(!(lx0 < bx + bw && bx < lx1 && ly - 11 < by + bh && by < ly + 4), "the legend leaves the best epoch's label visible")
        }
        #expect(svg.contains("run &lt;1&gt; &amp; co"), "the title is escaped")
    }

    /// With --ema the moving average's metrics are plotted beside the weights' own, dashed, in the same color.
    @Test func movingAverageMetricsAreDashed() throws {
        let jsonl = (1...3).map { e in
            "{\"epoch\":\(e),\"train_loss\":\(1.0 / Double(e)),\"val_loss\":0.5,\"val_acc\":0.8,\"ema_val_loss\":0.4,\"ema_val_acc\":0.85,\"seconds\":1}"
        }.joined(separator: "\n")
        let log = try MetricsLog(jsonl: jsonl, path: "e.jsonl")
        #expect(log.epochs["ema_val_loss"]?.map(\.y) == [0.4, 0.4, 0.4])
        let root = try #require(XMLNode.parse(log.svg(title: "ema")))
        var dashed: [String: Bool] = [:]
        for panel in root.children where panel["class"] == "panel" {
            for g in panel.children where g["class"] == "series" {
                dashed[g["data-series"] ?? "?"] = g.children.first { $0.name == "polyline" }?["stroke-dasharray"] != nil
            }
        }
        #expect(dashed == ["train_loss": false, "val_loss": false, "ema_val_loss": true, "val_acc": false, "ema_val_acc": true])
        #expect(log.svg(title: "ema").contains(">val loss (EMA)</text>"), "the legend names it")
    }

    /// The best epoch is early stopping's when the log has one (even on accuracy), else the lowest val_loss, else the
    /// lowest train_loss; the first of equal values wins, as early stopping keeps the first.
    @Test func bestEpochFollowsEarlyStoppingThenValidationLoss() throws {
        let rows = [(0.9, 0.5, 0.70), (0.6, 0.4, 0.80), (0.5, 0.4, 0.85), (0.4, 0.45, 0.90)]
        let epochs = rows.enumerated().map { i, r in
            "{\"epoch\":\(i + 1),\"train_loss\":\(r.0),\"val_loss\":\(r.1),\"val_acc\":\(r.2),\"seconds\":1}"
        }
        let plain = try MetricsLog(jsonl: epochs.joined(separator: "\n"), path: "b.jsonl")
        #expect(plain.bestEpoch == BestEpoch(epoch: 2, metric: "val_loss", value: 0.4), "the first of the two 0.4s")
        let stopped = epochs + ["{\"early_stop\":{\"epoch\":4,\"on\":\"val_acc\",\"best_epoch\":4,\"best\":0.9}}"]
        let log = try MetricsLog(jsonl: stopped.joined(separator: "\n"), path: "b.jsonl")
        #expect(log.bestEpoch == BestEpoch(epoch: 4, metric: "val_acc", value: 0.9))
        #expect(log.svg(title: "b").contains(">best: epoch 4, val_acc 0.9</text>"))
        let trainOnly = try MetricsLog(jsonl: "{\"epoch\":1,\"train_loss\":0.5,\"seconds\":1}\n{\"epoch\":2,\"train_loss\":0.3,\"seconds\":1}", path: "t")
        #expect(trainOnly.bestEpoch == BestEpoch(epoch: 2, metric: "train_loss", value: 0.3))
        #expect(try MetricsLog(jsonl: "{\"step\":1,\"epoch\":1,\"loss\":1,\"lr\":0.1}", path: "s").bestEpoch == nil)
    }

    @Test func onlyWhatWasLoggedIsPlotted() throws {
        let dense = "{\"epoch\":1,\"train_loss\":0.5,\"seconds\":1}\n{\"epoch\":2,\"train_loss\":0.25,\"seconds\":1}\n"
        let panels = try MetricsLog(jsonl: dense, path: "d.jsonl").panels()
        #expect(panels.map(\.title) == ["Loss per epoch"])
        #expect(Axis(values: [0.001, 0.001], integer: false, log: false).ticks.count >= 2, "a constant gets a range around it")
        #expect(Axis(values: [0, 0.3], integer: false, log: false).ticks.map { Axis(values: [0, 0.3], integer: false, log: false).label($0) }
                == ["0", "0.1", "0.2", "0.3"])
    }

    @Test func badInputIsOneErrorLine() throws {
        #expect(throws: Diagnostic.notJSONL(path: "m", line: 2, text: "epoch 1/3  train_loss 0.5")) {
            try MetricsLog(jsonl: "{\"step\":1,\"epoch\":1,\"loss\":1,\"lr\":0.1}\nepoch 1/3  train_loss 0.5\n", path: "m")
        }
        #expect(throws: Diagnostic.noMetrics(path: "m")) { try MetricsLog(jsonl: "{\"profile\":{}}\n\n", path: "m") }

        let dir = Paths.tempDir("plot")
        let notJSON = dir.appendingPathComponent("out.txt"), empty = dir.appendingPathComponent("empty.jsonl")
        try "epoch 1/3  train_loss 0.5\n".write(to: notJSON, atomically: true, encoding: .utf8)
        try "".write(to: empty, atomically: true, encoding: .utf8)
        let cases: [(String, String)] = [(dir.appendingPathComponent("nope.jsonl").path, "nope.jsonl: no such file"),
                                         (notJSON.path, "out.txt:1: not a JSON object"),
                                         (empty.path, "empty.jsonl: no training metrics"),
                                         (dir.path, "is a directory")]
        for (input, message) in cases {
            let svg = dir.appendingPathComponent("c.svg")
            let r = try Run.run(Paths.nncc, ["plot", input, "-o", svg.path])
            #expect(r.status == 1 && r.stderr.hasPrefix("nncc: error: ") && r.stderr.contains(message), "\(input): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: svg.path), "no output file for \(input)")
        }
        let good = dir.appendingPathComponent("m.jsonl")
        try Self.jsonl.write(to: good, atomically: true, encoding: .utf8)
        let ok = try Run.run(Paths.nncc, ["plot", good.path])
        #expect(ok.status == 0 && FileManager.default.fileExists(atPath: dir.appendingPathComponent("m.svg").path), "default output: \(ok.stderr)")
    }
}

/// A minimal element tree built with XMLParser: enough to walk an SVG's elements and attributes.
final class XMLNode: NSObject, XMLParserDelegate {
    var name = "", attributes: [String: String] = [:], children: [XMLNode] = [], text = ""
    private var stack: [XMLNode] = []

    subscript(_ key: String) -> String? { attributes[key] }
    func number(_ key: String) -> Double { Double(attributes[key] ?? "") ?? .nan }

    /// The root element, or nil when the text is not well-formed XML.
    static func parse(_ xml: String) -> XMLNode? {
        let doc = XMLNode(), parser = XMLParser(data: Data(xml.utf8))
        doc.stack = [doc]
        parser.delegate = doc
        return parser.parse() ? doc.children.first : nil
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        let e = XMLNode()
        e.name = name
        e.attributes = attributes
        stack.last!.children.append(e)
        stack.append(e)
    }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { stack.removeLast() }
    func parser(_ parser: XMLParser, foundCharacters string: String) { stack.last!.text += string }
}
