import Foundation
import NNCompiler
import SwiftProtobuf

/// A metrics log as one TensorBoard run: an event file (TFRecord-framed `tensorboard.Event` protos) in a directory
/// TensorBoard's `--logdir` points at.
///
/// Tags, x being TensorBoard's step:
/// - `step/KEY`: every number of the per-step lines (`step/loss`, `step/lr`), at the trainer's step;
/// - `epoch/KEY`: every number of the per-epoch lines (`epoch/train_loss`, `epoch/val_acc`, `epoch/seconds`, …),
///   at the epoch number (1-based);
/// - `histograms/NAME`: the step lines' histograms, at their step.
///
/// Scalars are float32 `simple_value`s, as PyTorch's SummaryWriter writes them; a `null` (non-finite) value is left
/// out. The log has no clock, so every event carries one wall time (the log file's modification time).
public struct TensorBoardRun {
    public var events: [Tensorboard_Event] = []

    /// The events of `log`: the file version first, then one event per logged step (its scalars and histograms),
    /// then one per epoch.
    public init(_ log: MetricsLog, wallTime: Double) {
        var first = Tensorboard_Event()
        first.wallTime = wallTime
        first.fileVersion = "brain.Event:2"  // also tells readers to detect restarts by SessionLog, not by step order
        events.append(first)
        var perStep: [Double: [Tensorboard_Summary.Value]] = [:], perEpoch: [Double: [Tensorboard_Summary.Value]] = [:]
        for (key, points) in log.steps.sorted(by: { $0.key < $1.key }) {
            for p in points { if let y = p.y { perStep[p.x, default: []].append(.scalar("step/\(key)", y)) } }
        }
        for (name, points) in log.histograms.sorted(by: { $0.key < $1.key }) {
            for p in points { perStep[p.step, default: []].append(.histogram("histograms/\(name)", p.histogram)) }
        }
        for (key, points) in log.epochs.sorted(by: { $0.key < $1.key }) {
            for p in points { if let y = p.y { perEpoch[p.x, default: []].append(.scalar("epoch/\(key)", y)) } }
        }
        for rows in [perStep, perEpoch] {
            for step in rows.keys.sorted() {
                var e = Tensorboard_Event()
                e.wallTime = wallTime
                e.step = Int64(step)
                e.summary.value = rows[step]!
                events.append(e)
            }
        }
    }

    /// The event file's bytes: each event serialized and framed as a TFRecord.
    public func serialized() throws -> Data {
        var out = Data()
        for e in events { out.append(TFRecord.frame(try e.serializedData())) }
        return out
    }

    /// The name TensorBoard looks for ("tfevents"), ending in ".nncc" so that rewriting a run can find its own files.
    public static func fileName(wallTime: Double) -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        return "events.out.tfevents.\(Int64(wallTime)).\(host).nncc"
    }

    /// Writes the run into `directory` (created if missing) atomically, and removes the event files an earlier
    /// `nncc plot --tensorboard` left there, so that TensorBoard does not read a run twice. Returns the file's path.
    public func write(to directory: String, wallTime: Double) throws -> String {
        let dir = URL(fileURLWithPath: directory)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), !isDir.boolValue {
            throw PlotError.unreadable(path: directory, reason: "is a file, expected a directory for the TensorBoard run")
        }
        let name = Self.fileName(wallTime: wallTime)
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try serialized().write(to: dir.appendingPathComponent(name), options: .atomic)
            for old in try FileManager.default.contentsOfDirectory(atPath: directory)
            where old != name && old.hasPrefix("events.out.tfevents.") && old.hasSuffix(".nncc") {
                try FileManager.default.removeItem(at: dir.appendingPathComponent(old))
            }
        } catch let e as PlotError {
            throw e
        } catch {
            throw PlotError.unreadable(path: directory, reason: "cannot write the TensorBoard run (\(error.localizedDescription))")
        }
        return dir.appendingPathComponent(name).path
    }
}

extension Tensorboard_Summary.Value {
    static func scalar(_ tag: String, _ y: Double) -> Self {
        var v = Self()
        v.tag = tag
        v.simpleValue = Float(y)
        return v
    }

    static func histogram(_ tag: String, _ h: Histogram) -> Self {
        var p = Tensorboard_HistogramProto()
        (p.min, p.max, p.num, p.sum, p.sumSquares) = (h.min, h.max, h.num, h.sum, h.sumSquares)
        (p.bucketLimit, p.bucket) = (h.bucketLimit, h.bucket)
        var v = Self()
        v.tag = tag
        v.histo = p
        return v
    }
}
