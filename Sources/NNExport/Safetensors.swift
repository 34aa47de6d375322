import Foundation
import NNIR

/// A weights file in the safetensors format, as the trainer writes it (runtime/safetensors.c): an 8-byte
/// little-endian header length, a JSON header `{name: {dtype, shape, data_offsets}, "__metadata__": {…}}`, then
/// the tensors' bytes. Read strictly: every error names the file and what was expected.
public struct SafetensorsFile {
    public struct Entry {
        public var dtype: String
        public var shape: [Int]
        /// The tensor's bytes within `data`.
        public var range: Range<Int>
    }

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    let data: Data

    /// The trainer's checkpoint marker (runtime/nnrt.h NNRT_CHECKPOINT_KEY): a checkpoint holds the optimizer's
    /// state besides the weights, and `nncc export` accepts it as weights, as `predict` does.
    static let checkpointKey = "nncc.checkpoint"

    public init(contentsOf url: URL) throws {
        path = url.path
        let file: Data
        do { file = try Data(contentsOf: url) } catch {
            throw ExportError("\(url.path): cannot read the weights file (\(Self.reason(error)))")
        }
        let bytes = [UInt8](file)
        guard bytes.count >= 8 else { throw ExportError("\(path): not a safetensors file (only \(bytes.count) bytes)") }
        let headerLength = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw ExportError("\(path): corrupt safetensors file (header length \(headerLength), file has \(bytes.count) bytes)")
        }
        let end = 8 + Int(headerLength)
        guard let json = try? JSONSerialization.jsonObject(with: Data(bytes[8..<end])),
              let header = json as? [String: Any] else {
            throw ExportError("\(path): corrupt safetensors file (the header is not a JSON object)")
        }
        data = Data(bytes[end...])
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            entries[name] = try Self.entry(name, value, dataCount: data.count, path: path)
        }
        self.entries = entries
        self.metadata = metadata
    }

    private static func entry(_ name: String, _ value: Any, dataCount: Int, path: String) throws -> Entry {
        guard let e = value as? [String: Any], let dtype = e["dtype"] as? String,
              let shape = e["shape"] as? [Int], let offsets = e["data_offsets"] as? [Int], offsets.count == 2,
              shape.allSatisfy({ $0 >= 0 }) else {
            throw ExportError("\(path): corrupt safetensors file (tensor '\(name)' lacks a dtype, shape or data_offsets)")
        }
        guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataCount else {
            throw ExportError("\(path): corrupt safetensors file (tensor '\(name)' has data_offsets \(offsets) in \(dataCount) bytes of data)")
        }
        return Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
    }

    public var isCheckpoint: Bool { metadata[Self.checkpointKey] != nil }

    /// Checks a parameter's tensor against its declaration: a missing tensor, another dtype (F32, or I64 for a
    /// step counter such as `num_batches_tracked`), another shape or a byte count that does not match is an error.
    @discardableResult
    public func validate(_ p: ParamInfo) throws -> Entry {
        let dtype = p.counter ? "I64" : "F32"
        guard let e = entries[p.name] else {
            throw ExportError("\(path): missing tensor '\(p.name)' (expected \(dtype) of shape \(Self.shapeText(p.shape)))")
        }
        guard e.dtype == dtype else { throw ExportError("\(path): tensor '\(p.name)' has dtype \(e.dtype), expected \(dtype)") }
        guard e.shape == p.shape else {
            throw ExportError("\(path): tensor '\(p.name)' has shape \(Self.shapeText(e.shape)), expected \(Self.shapeText(p.shape))")
        }
        guard e.range.count == p.count * (p.counter ? 8 : 4) else {
            throw ExportError("\(path): corrupt safetensors file (tensor '\(p.name)' has \(e.range.count) bytes for shape \(Self.shapeText(p.shape)))")
        }
        return e
    }

    /// The float32 values of a parameter, after `validate`; a value that is not finite is an error, as in the
    /// trainer's loader.
    public func floats(_ p: ParamInfo) throws -> [Float] {
        let e = try validate(p)
        let values = data.subdata(in: e.range).withUnsafeBytes { raw in
            (0..<p.count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw ExportError("\(path): tensor '\(p.name)' holds \(values[bad].isNaN ? "NaN" : "an infinity") at element \(bad), expected finite values")
        }
        return values
    }

    /// Checks that the file holds no tensor besides the model's parameters (and, in a checkpoint, its training
    /// state), as the trainer's strict loader does: a file of another model is refused, not half-used.
    public func checkNoUnexpected(_ params: [ParamInfo], model: String) throws {
        let known = Set(params.map(\.name))
        let state = ["optimizer.", "train.order", "early_stop.weights", "ema.weights"]
        for name in entries.keys.sorted() where !known.contains(name) {
            if isCheckpoint, state.contains(where: { name.hasPrefix($0) }) { continue }
            throw ExportError("\(path): unexpected tensor '\(name)' (not a parameter of \(model))")
        }
    }

    static func shapeText(_ s: [Int]) -> String { "(" + s.map(String.init).joined(separator: ", ") + ")" }

    public static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let under = ns.userInfo[NSUnderlyingErrorKey] as? NSError, under.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(under.code)))
        }
        return ns.localizedDescription
    }
}
