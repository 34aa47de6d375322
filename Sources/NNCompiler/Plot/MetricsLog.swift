import Foundation

/// What `nncc plot` could not read, as one line naming the file (nncc prints it after `nncc: error: `).
public enum PlotError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case notJSONL(path: String, line: Int, text: String)
    case noMetrics(path: String)
    case badHistogram(path: String, line: Int, name: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): \(reason)"
        case let .notJSONL(path, line, text):
            return "\(path):\(line): not a JSON object, expected the trainer's JSON Lines metrics (got '\(text)')"
        case let .noMetrics(path):
            return "\(path): no training metrics (expected lines with \"step\" and \"loss\", or \"epoch\" and \"train_loss\", "
                + "as 'TRAINER train --log' writes)"
        case let .badHistogram(path, line, name, reason):
            return "\(path):\(line): histogram '\(name)': \(reason)"
        }
    }
}

/// One (x, y) point of a curve; y is nil where the trainer logged a non-finite value (`null`).
public struct CurvePoint: Equatable {
    public var x: Double
    public var y: Double?
}

/// The epoch a plot marks as the best, and by what.
public struct BestEpoch: Equatable {
    public var epoch: Double
    public var metric: String    // "val_loss", "val_acc" (an early stop on accuracy) or "train_loss"
    public var value: Double?
}

/// The metrics of a trainer's `--log` file: per logged step `{"step","epoch","loss","lr"}`, per epoch
/// `{"epoch","train_loss","val_loss"?,"val_acc"?,"test_loss"?,"test_acc"?,"ema_…"?,"seconds"}` (the ema_ keys with
/// `--ema`: the moving average's metrics); other lines (the
/// `{"profile":…}` line) are ignored. A resumed run appends to its log, so a step or epoch logged twice keeps
/// its last value.
///
/// Every top-level number of a step line (a line with "step") is kept as a per-step series, and of an epoch line
/// (with "epoch" and no "step") as a per-epoch series, whatever its key: the SVG draws the keys it knows, TensorBoard
/// files get them all. A step line may carry histograms, `"histograms":{"NAME":{…}}` (see `Histogram`).
public struct MetricsLog {
    /// Per-step series by key ("loss", "lr", …), x = step; per-epoch series by key ("train_loss", …), x = epoch.
    public var steps: [String: [CurvePoint]] = [:]
    public var epochs: [String: [CurvePoint]] = [:]
    /// Per-step histograms by name, in step order.
    public var histograms: [String: [HistogramPoint]] = [:]
    /// The epoch whose weights a run keeps: the `best_epoch` of an `{"early_stop":…}` line when there is one, else
    /// the epoch of the lowest `val_loss` (what `--early-stop` watches by default), else of the lowest `train_loss`.
    /// The earliest wins a tie, as in early stopping, where only a strictly better value counts.
    public var bestEpoch: BestEpoch?

    /// Parses JSON Lines text; `path` names the file in errors.
    public init(jsonl text: String, path: String) throws {
        var stepRows: [Double: [String: Double?]] = [:], epochRows: [Double: [String: Double?]] = [:]
        var histogramRows: [String: [Double: Histogram]] = [:]
        var stopped: BestEpoch?
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw PlotError.notJSONL(path: path, line: i + 1, text: String(line.prefix(40)))
            }
            if let step = Self.number(object["step"]) {
                let values = Self.values(object, except: ["step", "epoch"])
                if !values.isEmpty { stepRows[step, default: [:]].merge(values) { $1 } }
                for (name, h) in try Histogram.parse(object["histograms"], path: path, line: i + 1) {
                    histogramRows[name, default: [:]][step] = h
                }
            } else if let epoch = Self.number(object["epoch"]) {
                let values = Self.values(object, except: ["epoch"])
                if !values.isEmpty { epochRows[epoch, default: [:]].merge(values) { $1 } }
            } else if let stop = object["early_stop"] as? [String: Any], let best = Self.number(stop["best_epoch"]),
                      let on = stop["on"] as? String {
                stopped = BestEpoch(epoch: best, metric: on, value: Self.number(stop["best"]))
            }
        }
        steps = Self.series(stepRows)
        epochs = Self.series(epochRows)
        histograms = histogramRows.mapValues { rows in rows.keys.sorted().map { HistogramPoint(step: $0, histogram: rows[$0]!) } }
        if steps.isEmpty && epochs.isEmpty && histograms.isEmpty { throw PlotError.noMetrics(path: path) }
        bestEpoch = stopped ?? Self.lowest(epochs, "val_loss") ?? Self.lowest(epochs, "train_loss")
    }

    /// The first epoch with the smallest finite value of a metric.
    private static func lowest(_ epochs: [String: [CurvePoint]], _ key: String) -> BestEpoch? {
        var best: CurvePoint?
        for p in epochs[key] ?? [] where p.y != nil && (best == nil || p.y! < best!.y!) { best = p }
        return best.map { BestEpoch(epoch: $0.x, metric: key, value: $0.y) }
    }

    /// Reads and parses a file.
    public init(contentsOf path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw PlotError.unreadable(path: path, reason: "no such file")
        }
        if isDir.boolValue { throw PlotError.unreadable(path: path, reason: "is a directory, expected a JSON Lines file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PlotError.unreadable(path: path, reason: "cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PlotError.unreadable(path: path, reason: "not UTF-8 text, expected the trainer's JSON Lines metrics")
        }
        try self.init(jsonl: text, path: path)
    }

    static func number(_ v: Any?) -> Double? {
        guard let d = (v as? NSNumber)?.doubleValue else { return nil }  // JSON numbers (null is NSNull)
        return d.isFinite ? d : nil
    }

    /// The object's numbers and nulls (a non-finite value, mapped to nil) but for the keys in `except`; a boolean,
    /// string, array or object is not a metric.
    private static func values(_ object: [String: Any], except: Set<String>) -> [String: Double?] {
        var out: [String: Double?] = [:]
        for (k, v) in object where !except.contains(k) {
            if v is NSNull { out[k] = .some(nil) }
            else if let n = v as? NSNumber, !Self.isBool(n) { out[k] = .some(number(n)) }
        }
        return out
    }

    /// JSONSerialization reads `true` as an NSNumber too, of type char ("c"), which no JSON number parses to.
    static func isBool(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    /// Each key's points in x order; a key whose every value is null is left out.
    private static func series(_ rows: [Double: [String: Double?]]) -> [String: [CurvePoint]] {
        var out: [String: [CurvePoint]] = [:]
        for x in rows.keys.sorted() {
            for (k, v) in rows[x]! { out[k, default: []].append(CurvePoint(x: x, y: v)) }
        }
        return out.filter { $0.value.contains { $0.y != nil } }
    }
}
