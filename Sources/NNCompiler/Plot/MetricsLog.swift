import Foundation

/// What `nncc plot` could not read, as one line naming the file (nncc prints it after `nncc: error: `).
public enum PlotError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case notJSONL(path: String, line: Int, text: String)
    case noMetrics(path: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): \(reason)"
        case let .notJSONL(path, line, text):
            return "\(path):\(line): not a JSON object, expected the trainer's JSON Lines metrics (got '\(text)')"
        case let .noMetrics(path):
            return "\(path): no training metrics (expected lines with \"step\" and \"loss\", or \"epoch\" and \"train_loss\", "
                + "as 'TRAINER train --log' writes)"
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
public struct MetricsLog {
    /// Per-step series by key ("loss", "lr"), x = step; per-epoch series by key ("train_loss", …), x = epoch.
    public var steps: [String: [CurvePoint]] = [:]
    public var epochs: [String: [CurvePoint]] = [:]
    /// The epoch whose weights a run keeps: the `best_epoch` of an `{"early_stop":…}` line when there is one, else
    /// the epoch of the lowest `val_loss` (what `--early-stop` watches by default), else of the lowest `train_loss`.
    /// The earliest wins a tie, as in early stopping, where only a strictly better value counts.
    public var bestEpoch: BestEpoch?

    public static let stepKeys = ["loss", "lr"]
    public static let epochKeys = ["train_loss", "val_loss", "test_loss", "val_acc", "test_acc",
                                   "ema_val_loss", "ema_test_loss", "ema_val_acc", "ema_test_acc"]

    /// Parses JSON Lines text; `path` names the file in errors.
    public init(jsonl text: String, path: String) throws {
        var stepRows: [Double: [String: Double?]] = [:], epochRows: [Double: [String: Double?]] = [:]
        var stopped: BestEpoch?
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw PlotError.notJSONL(path: path, line: i + 1, text: String(line.prefix(40)))
            }
            if let step = Self.number(object["step"]), object["loss"] != nil {
                stepRows[step] = Self.values(object, Self.stepKeys)
            } else if let epoch = Self.number(object["epoch"]), object["train_loss"] != nil {
                epochRows[epoch] = Self.values(object, Self.epochKeys)
            } else if let stop = object["early_stop"] as? [String: Any], let best = Self.number(stop["best_epoch"]),
                      let on = stop["on"] as? String {
                stopped = BestEpoch(epoch: best, metric: on, value: Self.number(stop["best"]))
            }
        }
        if stepRows.isEmpty && epochRows.isEmpty { throw PlotError.noMetrics(path: path) }
        steps = Self.series(stepRows, Self.stepKeys)
        epochs = Self.series(epochRows, Self.epochKeys)
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

    private static func number(_ v: Any?) -> Double? {
        guard let d = (v as? NSNumber)?.doubleValue else { return nil }  // JSON numbers (null is NSNull)
        return d.isFinite ? d : nil
    }

    /// The keys present in the object; a present key with `null` (a non-finite value) maps to nil.
    private static func values(_ object: [String: Any], _ keys: [String]) -> [String: Double?] {
        var out: [String: Double?] = [:]
        for k in keys where object[k] != nil { out[k] = .some(number(object[k])) }
        return out
    }

    private static func series(_ rows: [Double: [String: Double?]], _ keys: [String]) -> [String: [CurvePoint]] {
        var out: [String: [CurvePoint]] = [:]
        for x in rows.keys.sorted() {
            for (k, v) in rows[x]! { out[k, default: []].append(CurvePoint(x: x, y: v)) }
        }
        return out.filter { keys.contains($0.key) && $0.value.contains { $0.y != nil } }
    }
}
