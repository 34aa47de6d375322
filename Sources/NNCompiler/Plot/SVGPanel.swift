import Foundation

/// One curve of a panel: its points, a legend label and how it is drawn.
struct PlotSeries {
    var key: String          // the JSONL key, kept as data-series in the SVG
    var label: String
    var points: [CurvePoint]
    var color: String
    var width = 1.8
    var opacity = 1.0
    var markers = false      // a dot per point (per-epoch series, which have few points)
    var dashed = false       // the moving average's metrics (--ema), beside the weights' own in the same color
}

extension PlotSeries {
    /// The stroke's dash attribute, or nothing for a solid line.
    var dash: String { dashed ? " stroke-dasharray=\"6 3\"" : "" }
}

/// One chart: axes with ticks and labels, a grid, the curves, a legend; rendered into a rectangle of the SVG.
struct SVGPanel {
    var title: String
    var xLabel: String
    var yLabel: String
    var series: [PlotSeries]
    var integerX = false     // epochs and steps: ticks at whole numbers
    var logY = false         // the learning rate can span decades
    var best: BestEpoch?     // per-epoch panels: a vertical marker at the epoch a run keeps

    static let margin = (left: 68.0, right: 26.0, top: 30.0, bottom: 42.0)

    /// SVG elements for the panel with its top-left corner at (x0, y0).
    func render(x0: Double, y0: Double, width: Double, height: Double) -> String {
        let plot = (x: x0 + Self.margin.left, y: y0 + Self.margin.top,
                    w: width - Self.margin.left - Self.margin.right, h: height - Self.margin.top - Self.margin.bottom)
        let xs = series.flatMap { $0.points.map(\.x) }
        let ys = series.flatMap { $0.points.compactMap(\.y) }.filter { !logY || $0 > 0 }
        let xAxis = Axis(values: xs, integer: integerX, log: false)
        let yAxis = Axis(values: ys, integer: false, log: logY)
        let px = { (x: Double) in plot.x + xAxis.fraction(x) * plot.w }
        let py = { (y: Double) in plot.y + (1 - yAxis.fraction(y)) * plot.h }
        var out = "<g class=\"panel\" data-title=\"\(xmlEscape(title))\">\n"
        out += "<text class=\"title\" x=\"\(svgNum(plot.x + plot.w / 2))\" y=\"\(svgNum(y0 + 18))\" text-anchor=\"middle\">\(xmlEscape(title))</text>\n"
        out += "<rect class=\"frame\" x=\"\(svgNum(plot.x))\" y=\"\(svgNum(plot.y))\" width=\"\(svgNum(plot.w))\" height=\"\(svgNum(plot.h))\"/>\n"
        for t in xAxis.ticks {
            let x = px(t)
            out += "<line class=\"grid\" x1=\"\(svgNum(x))\" y1=\"\(svgNum(plot.y))\" x2=\"\(svgNum(x))\" y2=\"\(svgNum(plot.y + plot.h))\"/>"
            out += "<text class=\"tick x\" x=\"\(svgNum(x))\" y=\"\(svgNum(plot.y + plot.h + 15))\" text-anchor=\"middle\">\(xAxis.label(t))</text>\n"
        }
        for t in yAxis.ticks {
            let y = py(t)
            out += "<line class=\"grid\" x1=\"\(svgNum(plot.x))\" y1=\"\(svgNum(y))\" x2=\"\(svgNum(plot.x + plot.w))\" y2=\"\(svgNum(y))\"/>"
            out += "<text class=\"tick y\" x=\"\(svgNum(plot.x - 6))\" y=\"\(svgNum(y + 4))\" text-anchor=\"end\">\(yAxis.label(t))</text>\n"
        }
        out += "<text class=\"axis-label\" x=\"\(svgNum(plot.x + plot.w / 2))\" y=\"\(svgNum(plot.y + plot.h + 34))\" text-anchor=\"middle\">\(xmlEscape(xLabel))</text>\n"
        // The y label, turned to read upwards, left of the tick labels.
        let ly = plot.y + plot.h / 2
        out += "<text class=\"axis-label y\" x=\"\(svgNum(x0 + 16))\" y=\"\(svgNum(ly))\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 \(svgNum(x0 + 16)) \(svgNum(ly)))\">\(xmlEscape(yLabel))</text>\n"
        // The best epoch's label is an obstacle for the legend as well as the points are.
        var label: (x: Double, y: Double, w: Double, h: Double)? = nil
        if let best, best.epoch >= xAxis.lo, best.epoch <= xAxis.hi {
            let m = marker(best, x: px(best.epoch), plot: plot)
            out += m.svg
            label = m.box
        }
        for s in series { out += curve(s, px: px, py: py) }
        // The legend goes in the corner that hides the fewest points.
        let size = legendSize()
        let corners = [(plot.x + plot.w - 8 - size.w, plot.y + 8), (plot.x + plot.w - 8 - size.w, plot.y + plot.h - 8 - size.h),
                       (plot.x + 8, plot.y + 8), (plot.x + 8, plot.y + plot.h - 8 - size.h)]
        let screen = series.flatMap { s in s.points.compactMap { p in p.y.flatMap { y in !logY || y > 0 ? (px(p.x), py(y)) : nil } } }
        let hidden = corners.map { c in
            screen.filter { $0.0 >= c.0 - 4 && $0.0 <= c.0 + size.w + 4 && $0.1 >= c.1 - 4 && $0.1 <= c.1 + size.h + 4 }.count
                + (label.map { l in l.x < c.0 + size.w && c.0 < l.x + l.w && l.y < c.1 + size.h && c.1 < l.y + l.h } == true ? 1_000_000 : 0)
        }
        let best = corners[hidden.firstIndex(of: hidden.min()!)!]
        out += legend(x: best.0, y: best.1, size: size)
        return out + "</g>\n"
    }

    /// A polyline per run of finite points (a null breaks the line), and dots for marked series.
    private func curve(_ s: PlotSeries, px: (Double) -> Double, py: (Double) -> Double) -> String {
        var runs: [[String]] = [[]], dots = ""
        for p in s.points {
            guard let y = p.y, !logY || y > 0 else { if !runs[runs.count - 1].isEmpty { runs.append([]) }; continue }
            runs[runs.count - 1].append("\(svgNum(px(p.x))),\(svgNum(py(y)))")
            if s.markers { dots += "<circle cx=\"\(svgNum(px(p.x)))\" cy=\"\(svgNum(py(y)))\" r=\"3\" fill=\"\(s.color)\"/>" }
        }
        var out = "<g class=\"series\" data-series=\"\(s.key)\" opacity=\"\(s.opacity)\">"
        for r in runs where !r.isEmpty {
            out += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"\(s.width)\" stroke-linejoin=\"round\"\(s.dash) points=\"\(r.joined(separator: " "))\"/>"
        }
        return out + dots + "</g>\n"
    }

    /// A dashed vertical line at the best epoch, labelled at the top ("best: epoch 8, val_loss 0.7928"), and the
    /// label's box (about 6.5 px a character at 11 px).
    private func marker(_ b: BestEpoch, x: Double, plot: (x: Double, y: Double, w: Double, h: Double))
        -> (svg: String, box: (x: Double, y: Double, w: Double, h: Double)) {
        let value = b.value.map { String(format: ", %@ %.4g", b.metric, $0) } ?? ", \(b.metric)"
        let text = "best: epoch \(String(format: "%g", b.epoch))\(value)"
        let anchor = x > plot.x + plot.w / 2 ? "end" : "start", dx = anchor == "end" ? -4.0 : 4.0
        let width = 6.5 * Double(text.count)
        let box = (x: anchor == "end" ? x + dx - width : x + dx, y: plot.y, w: width, h: 16.0)
        return (svg: "<g class=\"best-epoch\" data-epoch=\"\(String(format: "%g", b.epoch))\" data-metric=\"\(b.metric)\">"
            + "<line x1=\"\(svgNum(x))\" y1=\"\(svgNum(plot.y))\" x2=\"\(svgNum(x))\" y2=\"\(svgNum(plot.y + plot.h))\" "
            + "stroke=\"#d62728\" stroke-width=\"1.2\" stroke-dasharray=\"4 3\"/>"
            + "<text x=\"\(svgNum(x + dx))\" y=\"\(svgNum(plot.y + 12))\" text-anchor=\"\(anchor)\" fill=\"#d62728\" "
            + "font-size=\"11\">\(xmlEscape(text))</text></g>\n", box: box)
    }

    private static let legendRow = 16.0

    private func legendSize() -> (w: Double, h: Double) {
        (16 + 7 * Double(series.map(\.label.count).max() ?? 0) + 28, Double(series.count) * Self.legendRow + 8)
    }

    /// The legend with its top-left corner at (left, top): a line sample and the label per series.
    private func legend(x left: Double, y top: Double, size: (w: Double, h: Double)) -> String {
        let rowH = Self.legendRow
        var out = "<g class=\"legend\"><rect x=\"\(svgNum(left))\" y=\"\(svgNum(top))\" width=\"\(svgNum(size.w))\" height=\"\(svgNum(size.h))\" "
            + "fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>"
        for (i, s) in series.enumerated() {
            let y = top + 4 + rowH * Double(i) + rowH / 2, x = left + 8
            out += "<line x1=\"\(svgNum(x))\" y1=\"\(svgNum(y))\" x2=\"\(svgNum(x + 20))\" y2=\"\(svgNum(y))\" stroke=\"\(s.color)\" stroke-width=\"2.5\" opacity=\"\(s.opacity)\"\(s.dash)/>"
            out += "<text x=\"\(svgNum(x + 26))\" y=\"\(svgNum(y + 4))\">\(xmlEscape(s.label))</text>"
        }
        return out + "</g>\n"
    }
}

/// An axis range with "nice" ticks (1, 2 or 5 × 10^k apart, or whole decades on a log axis).
struct Axis {
    var lo: Double, hi: Double
    var ticks: [Double]      // data values (powers of ten on a log axis)
    var log: Bool
    var step: Double

    init(values: [Double], integer: Bool, log: Bool) {
        self.log = log
        let finite = values.filter(\.isFinite).map { log ? Foundation.log10($0) : $0 }
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        if hi - lo < 1e-12 * Swift.max(1, abs(hi)) {  // one value: a range around it
            let pad = log ? 0.5 : integer ? 1 : lo == 0 ? 0.5 : abs(lo) * 0.1
            lo -= pad
            hi += pad
        }
        var step = log ? Swift.max(1, ((hi - lo) / 5).rounded(.up)) : Axis.niceStep((hi - lo) / 5)
        if integer { step = Swift.max(1, step.rounded()) }
        lo = (lo / step).rounded(.down) * step
        hi = (hi / step).rounded(.up) * step
        let n = Int(((hi - lo) / step).rounded())
        self.step = step
        self.lo = lo
        self.hi = hi
        ticks = (0...n).map { [lo, step] in log ? Foundation.pow(10, lo + Double($0) * step) : lo + Double($0) * step }
    }

    /// The smallest 1, 2 or 5 × 10^k at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        let e = Foundation.pow(10, (Foundation.log10(raw)).rounded(.down))
        for m in [1.0, 2, 5, 10] where m * e >= raw * (1 - 1e-9) { return m * e }
        return 10 * e
    }

    /// Where a data value falls, 0 at lo and 1 at hi.
    func fraction(_ v: Double) -> Double {
        let t = log ? Foundation.log10(v) : v
        return hi > lo ? (t - lo) / (hi - lo) : 0.5
    }

    /// A tick's value, rounded to the tick spacing so that 0.30000000000000004 prints as 0.3.
    func label(_ t: Double) -> String {
        if log { return String(format: "%g", t) }
        let r = (t / step).rounded() * step
        return String(format: "%g", abs(r) < step * 1e-9 ? 0 : r)
    }
}

/// Coordinates with two decimals: enough for a screen, short in the file.
func svgNum(_ v: Double) -> String { String(format: "%.2f", v) }

func xmlEscape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
