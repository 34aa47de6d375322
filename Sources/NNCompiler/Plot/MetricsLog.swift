import Foundation
import NNIR

/// What `nncc plot` could not read, as one line naming the file (nncc prints it after `nncc: error: `).
extension Diagnostic {
    public static func unreadable(path: String, reason: String) -> Diagnostic { .error("\(path): \(reason)") }

    public static func notJSONL(path: String, line: Int, text: String) -> Diagnostic {
        .error("\(path):\(line): not a JSON object, expected the trainer's JSON Lines metrics (got '\(text)')")
    }

    public static func noMetrics(path: String) -> Diagnostic {
        .error("\(path): no training metrics (expected lines with \"step\" and \"loss\", or \"epoch\" and \"train_loss\", "
               + "as 'TRAINER train --log' writes)")
    }
}

/// One (x, y) point of a curve; y is nil where the trainer logged a non-finite value (`null`).
public struct CurvePoint: Equatable {
    public var x: Double
    public var y: Double?
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

    public static let stepKeys = ["loss", "lr"]
    public static let epochKeys = ["train_loss", "val_loss", "test_loss", "val_acc", "test_acc",
                                   "ema_val_loss", "ema_test_loss", "ema_val_acc", "ema_test_acc"]

    /// Parses JSON Lines text; `path` names the file in errors.
    public init(jsonl text: String, path: String) throws {
        var stepRows: [Double: [String: Double?]] = [:], epochRows: [Double: [String: Double?]] = [:]
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw Diagnostic.notJSONL(path: path, line: i + 1, text: String(line.prefix(40)))
            }
            if let step = Self.number(object["step"]), object["loss"] != nil {
                stepRows[step] = Self.values(object, Self.stepKeys)
            } else if let epoch = Self.number(object["epoch"]), object["train_loss"] != nil {
                epochRows[epoch] = Self.values(object, Self.epochKeys)
            }
        }
        if stepRows.isEmpty && epochRows.isEmpty { throw Diagnostic.noMetrics(path: path) }
        steps = Self.series(stepRows, Self.stepKeys)
        epochs = Self.series(epochRows, Self.epochKeys)
    }

    /// Reads and parses a file.
    public init(contentsOf path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw Diagnostic.unreadable(path: path, reason: "no such file")
        }
        if isDir.boolValue { throw Diagnostic.unreadable(path: path, reason: "is a directory, expected a JSON Lines file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Diagnostic.unreadable(path: path, reason: "cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw Diagnostic.unreadable(path: path, reason: "not UTF-8 text, expected the trainer's JSON Lines metrics")
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
