import Foundation

/// A histogram's history as a heat map: one column per logged step (in order, equally wide), one cell per bucket
/// spanning its value range on a shared y axis, shaded by the bucket's share of its column's largest count. What
/// `--monitor`'s activation histograms (`act/NAME`) look like over training: a ReLU layer dying shows as its mass
/// collapsing onto 0, a saturating tanh as mass piling up at ±1.
struct HistogramPanel {
    var title: String
    var points: [HistogramPoint]

    /// SVG elements for the panel with its top-left corner at (x0, y0).
    func render(x0: Double, y0: Double, width: Double, height: Double) -> String {
        let m = SVGPanel.margin
        let plot = (x: x0 + m.left, y: y0 + m.top, w: width - m.left - m.right, h: height - m.top - m.bottom)
        let yAxis = Axis(values: points.flatMap { [$0.histogram.min, $0.histogram.max] }, integer: false, log: false)
        let py = { (v: Double) in plot.y + (1 - yAxis.fraction(v)) * plot.h }
        let columnW = plot.w / Double(max(1, points.count))
        var out = "<g class=\"panel histogram\" data-title=\"\(xmlEscape(title))\">\n"
        out += "<text class=\"title\" x=\"\(svgNum(plot.x + plot.w / 2))\" y=\"\(svgNum(y0 + 18))\" text-anchor=\"middle\">\(xmlEscape(title))</text>\n"
        for t in yAxis.ticks {
            out += "<line class=\"grid\" x1=\"\(svgNum(plot.x))\" y1=\"\(svgNum(py(t)))\" x2=\"\(svgNum(plot.x + plot.w))\" y2=\"\(svgNum(py(t)))\"/>"
            out += "<text class=\"tick y\" x=\"\(svgNum(plot.x - 6))\" y=\"\(svgNum(py(t) + 4))\" text-anchor=\"end\">\(yAxis.label(t))</text>\n"
        }
        for (i, p) in points.enumerated() {
            let h = p.histogram, most = h.bucket.max() ?? 0
            let x = plot.x + Double(i) * columnW
            for (b, count) in h.bucket.enumerated() where count > 0 && most > 0 {
                let lower = b == 0 ? h.min : h.bucketLimit[b - 1], upper = h.bucketLimit[b]
                let top = py(upper), bottom = py(lower)
                out += "<rect x=\"\(svgNum(x))\" y=\"\(svgNum(top))\" width=\"\(svgNum(columnW))\" height=\"\(svgNum(max(bottom - top, 1)))\" "
                    + "fill=\"#1f77b4\" fill-opacity=\"\(String(format: "%.3f", count / most))\"/>"
            }
            out += "\n"
        }
        // Step labels under the first, middle and last columns.
        for i in Set([0, points.count / 2, points.count - 1]).sorted() where i >= 0 && i < points.count {
            let x = plot.x + (Double(i) + 0.5) * columnW
            out += "<text class=\"tick x\" x=\"\(svgNum(x))\" y=\"\(svgNum(plot.y + plot.h + 15))\" text-anchor=\"middle\">"
                + "\(String(format: "%g", points[i].step))</text>\n"
        }
        out += "<rect class=\"frame\" x=\"\(svgNum(plot.x))\" y=\"\(svgNum(plot.y))\" width=\"\(svgNum(plot.w))\" height=\"\(svgNum(plot.h))\"/>\n"
        out += "<text class=\"axis-label\" x=\"\(svgNum(plot.x + plot.w / 2))\" y=\"\(svgNum(plot.y + plot.h + 34))\" text-anchor=\"middle\">step</text>\n"
        let ly = plot.y + plot.h / 2
        out += "<text class=\"axis-label y\" x=\"\(svgNum(x0 + 16))\" y=\"\(svgNum(ly))\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 \(svgNum(x0 + 16)) \(svgNum(ly)))\">value</text>\n"
        return out + "</g>\n"
    }
}

extension MetricsLog {
    /// Ten distinct colors for per-layer series.
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// `train --monitor`'s panels: the update/weight ratio of every parameter on a log axis (about 1e-3 is healthy).
    func monitorPanels() -> [SVGPanel] {
        let keys = steps.keys.filter { $0.hasPrefix("update_ratio/") }.sorted()
        guard !keys.isEmpty else { return [] }
        let series = keys.enumerated().map { i, k in
            PlotSeries(key: k, label: String(k.dropFirst("update_ratio/".count)), points: steps[k]!,
                       color: Self.palette[i % Self.palette.count], markers: steps[k]!.count < 30)
        }
        return [SVGPanel(title: "Update/weight ratio per layer (log scale)", xLabel: "step", yLabel: "‖ΔW‖ / ‖W‖",
                         series: series, integerX: true, logY: true)]
    }

    /// A heat map per logged histogram (`act/NAME`, …) over the steps, in name order.
    func histogramPanels() -> [HistogramPanel] {
        histograms.keys.sorted().map { HistogramPanel(title: "Histogram of \($0) over steps", points: histograms[$0]!) }
    }
}
