import Foundation

/// Reads a safetensors file into name → (shape, float values); the tests' own reader, independent of runtime/.
func readSafetensors(_ url: URL) throws -> [String: (shape: [Int], data: [Float])] {
    let d = try Data(contentsOf: url)
    let n = d.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let header = try JSONSerialization.jsonObject(with: d.subdata(in: 8..<(8 + n))) as! [String: Any]
    var out: [String: (shape: [Int], data: [Float])] = [:]
    for (k, v) in header where k != "__metadata__" {
        let e = v as! [String: Any]
        precondition(e["dtype"] as? String == "F32", "\(k) is not F32")
        let off = e["data_offsets"] as! [Int]
        let bytes = d.subdata(in: (8 + n + off[0])..<(8 + n + off[1]))
        let floats = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
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
