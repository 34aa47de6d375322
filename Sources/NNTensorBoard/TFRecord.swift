import Foundation

/// TFRecord framing, the container of TensorBoard event files: each record is
/// `length (UInt64 LE) · masked CRC-32C of those 8 bytes (UInt32 LE) · data · masked CRC-32C of data (UInt32 LE)`.
public enum TFRecord {
    /// One record holding `data`.
    public static func frame(_ data: Data) -> Data {
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Data($0) }
        var out = length
        append(CRC32C.masked(length), to: &out)
        out.append(data)
        append(CRC32C.masked(data), to: &out)
        return out
    }

    /// What a sequence of records could not be read as.
    public struct FormatError: Error, CustomStringConvertible, Equatable {
        public var offset: Int
        public var reason: String
        public var description: String { "TFRecord at byte \(offset): \(reason)" }
        public init(offset: Int, reason: String) { (self.offset, self.reason) = (offset, reason) }
    }

    /// The data of every record in `bytes`, each checked against both its CRCs.
    public static func records(in bytes: Data) throws -> [Data] {
        let b = [UInt8](bytes)
        var out: [Data] = [], at = 0
        func le(_ start: Int, _ count: Int) -> UInt64 {
            (0..<count).reduce(UInt64(0)) { $0 | UInt64(b[start + $1]) << (8 * UInt64($1)) }
        }
        while at < b.count {
            guard b.count - at >= 12 else { throw FormatError(offset: at, reason: "truncated header") }
            if UInt32(le(at + 8, 4)) != CRC32C.masked(b[at..<at + 8]) { throw FormatError(offset: at, reason: "length CRC mismatch") }
            let n = le(at, 8)
            guard n <= UInt64(b.count - at - 16) else { throw FormatError(offset: at, reason: "truncated record (\(n) bytes claimed)") }
            let data = b[at + 12..<at + 12 + Int(n)]
            if UInt32(le(at + 12 + Int(n), 4)) != CRC32C.masked(data) { throw FormatError(offset: at, reason: "data CRC mismatch") }
            out.append(Data(data))
            at += 16 + Int(n)
        }
        return out
    }

    private static func append(_ v: UInt32, to out: inout Data) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }
}
