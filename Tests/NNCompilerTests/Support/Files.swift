import Foundation

/// Reads a safetensors file into name → (shape, float values; I64 counters converted); the tests' own reader,
/// independent of runtime/.
func readSafetensors(_ url: URL) throws -> [String: (shape: [Int], data: [Float])] {
    let d = try Data(contentsOf: url)
    let n = d.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let header = try JSONSerialization.jsonObject(with: d.subdata(in: 8..<(8 + n))) as! [String: Any]
    var out: [String: (shape: [Int], data: [Float])] = [:]
    for (k, v) in header where k != "__metadata__" {
        let e = v as! [String: Any]
        let off = e["data_offsets"] as! [Int]
        let bytes = d.subdata(in: (8 + n + off[0])..<(8 + n + off[1]))
        let floats: [Float]
        switch e["dtype"] as? String {
        case "F32": floats = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        case "I64": floats = bytes.withUnsafeBytes { $0.bindMemory(to: Int64.self).map { Float($0) } }
        default: preconditionFailure("\(k) has dtype \(e["dtype"] ?? "none")")
        }
        out[k] = (e["shape"] as! [Int], floats)
    }
    return out
}

/// The JSON objects of a JSON Lines file.
func readJSONL(_ url: URL) throws -> [[String: Any]] {
    try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
        try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
}

func readJSON(_ url: URL) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
}

/// |a − b| ≤ atol + rtol·|b|, the usual closeness test (numpy.isclose).
func close(_ a: Double, _ b: Double, rtol: Double, atol: Double = 0) -> Bool { abs(a - b) <= atol + rtol * abs(b) }

/// Writes float32 tensors (and int64 counters) as a safetensors file (names sorted), the tests' own writer.
func writeSafetensors(_ url: URL, _ tensors: [String: (shape: [Int], data: [Float])], counters: [String: Int64] = [:]) throws {
    var header = "{", body = Data(), first = true
    for (name, c) in counters.sorted(by: { $0.key < $1.key }) {
        let begin = body.count
        withUnsafeBytes(of: c.littleEndian) { body.append(contentsOf: $0) }
        header += (first ? "" : ",") + "\"\(name)\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[\(begin),\(body.count)]}"
        first = false
    }
    for (name, t) in tensors.sorted(by: { $0.key < $1.key }) {
        let begin = body.count
        t.data.withUnsafeBytes { body.append(contentsOf: $0) }
        header += (first ? "" : ",") + "\"\(name)\":{\"dtype\":\"F32\",\"shape\":\(t.shape),\"data_offsets\":[\(begin),\(body.count)]}"
        first = false
    }
    header += "}"
    while header.utf8.count % 8 != 0 { header += " " }
    var d = Data((0..<8).map { UInt8((header.utf8.count >> (8 * $0)) & 0xff) })
    d.append(contentsOf: Array(header.utf8))
    d.append(body)
    try d.write(to: url)
}
