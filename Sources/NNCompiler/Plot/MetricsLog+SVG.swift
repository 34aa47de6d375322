import Foundation

extension MetricsLog {
    /// Colors of the splits, the same in every panel.
    static let colors = ["train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c", "lr": "#9467bd"]

    /// The panels that have data, in reading order: loss per step, loss per epoch, accuracy per epoch, learning rate,
    /// `--monitor`'s update ratios (the histograms' heat maps follow them in `svg`).
    func panels() -> [SVGPanel] {
        var out: [SVGPanel] = []
        if let loss = steps["loss"] {
            var s = [PlotSeries(key: "loss", label: "batch loss", points: loss, color: Self.colors["train"]!, width: 1.2,
                                opacity: loss.count > 50 ? 0.35 : 1)]
            if loss.count > 50 {
                s.append(PlotSeries(key: "loss_smoothed", label: "moving average", points: Self.movingAverage(loss, window: loss.count / 25),
                                    color: Self.colors["train"]!, width: 2))
            }
            out.append(SVGPanel(title: "Loss per step", xLabel: "step", yLabel: "loss", series: s, integerX: true))
        }
        // Each split's own metric, and with --ema the moving average's, dashed in the split's color.
        let perEpoch = { (splits: [String], metric: String, label: String) -> [PlotSeries] in
            splits.flatMap { split -> [PlotSeries] in
                [("", "", false), ("ema_", " (EMA)", true)].compactMap { prefix, suffix, dashed in
                    self.epochs["\(prefix)\(split)_\(metric)"].map {
                        PlotSeries(key: "\(prefix)\(split)_\(metric)", label: "\(split) \(label)\(suffix)", points: $0,
                                   color: Self.colors[split]!, markers: true, dashed: dashed)
                    }
                }
            }
        }
        let lossSeries = perEpoch(["train", "val", "test"], "loss", "loss")
        if !lossSeries.isEmpty {
            out.append(SVGPanel(title: "Loss per epoch", xLabel: "epoch", yLabel: "loss", series: lossSeries, integerX: true,
                                best: bestEpoch))
        }
        let accSeries = perEpoch(["val", "test"], "acc", "accuracy")
        if !accSeries.isEmpty {
            out.append(SVGPanel(title: "Accuracy per epoch", xLabel: "epoch", yLabel: "accuracy", series: accSeries,
                                integerX: true, best: bestEpoch))
        }
        if let lr = steps["lr"] {
            let ys = lr.compactMap(\.y)
            let wide = (ys.min() ?? 0) > 0 && (ys.max() ?? 0) / (ys.min() ?? 1) > 20
            out.append(SVGPanel(title: "Learning rate per step" + (wide ? " (log scale)" : ""), xLabel: "step", yLabel: "learning rate",
                                series: [PlotSeries(key: "lr", label: "learning rate", points: lr, color: Self.colors["lr"]!)],
                                integerX: true, logY: wide))
        }
        return out + monitorPanels()
    }

    /// A self-contained SVG: the panels in a grid of two columns, under a title.
    public func svg(title: String) -> String {
        typealias Render = (Double, Double, Double, Double) -> String
        let panels: [Render] = panels().map { p in { p.render(x0: $0, y0: $1, width: $2, height: $3) } }
            + histogramPanels().map { p in { p.render(x0: $0, y0: $1, width: $2, height: $3) } }
        let columns = panels.count == 1 ? 1 : 2
        let panelW = 500.0, panelH = 320.0, top = 40.0
        let rows = (panels.count + columns - 1) / columns
        let width = panelW * Double(columns), height = top + panelH * Double(rows)
        var out = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" \
        font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
        <style>
        .title { font-size: 14px; font-weight: bold; }
        .frame { fill: none; stroke: #444; }
        .grid { stroke: #e3e3e3; }
        .tick { fill: #333; font-size: 11px; }
        .axis-label { fill: #333; }
        </style>
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Int(width / 2))" y="26" text-anchor="middle" font-size="16">\(xmlEscape(title))</text>

        """
        for (i, p) in panels.enumerated() {
            out += p(panelW * Double(i % columns), top + panelH * Double(i / columns), panelW, panelH)
        }
        return out + "</svg>\n"
    }

    /// The mean of each point's trailing window (nulls skipped), to see the trend of a noisy batch loss.
    static func movingAverage(_ points: [CurvePoint], window: Int) -> [CurvePoint] {
        let w = max(2, window)
        return points.indices.map { i in
            let ys = points[max(0, i - w + 1)...i].compactMap(\.y)
            return CurvePoint(x: points[i].x, y: ys.isEmpty ? nil : ys.reduce(0, +) / Double(ys.count))
        }
    }
}
