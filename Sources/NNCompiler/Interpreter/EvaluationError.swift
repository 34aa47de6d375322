import NNIR

/// Why the reference interpreter could not evaluate a graph.
public enum EvaluationError: Error, CustomStringConvertible, Equatable {
    /// An `input`, `param` or `hyper` node has no value to read.
    case missingValue(kind: String, name: String)
    /// A bound tensor does not have the shape the node declares (full shape, batch included).
    case shapeMismatch(name: String, expected: [Int], got: [Int])
    /// The graph has batched values but no batched input fixes `n`.
    case unknownBatchSize
    /// A class label is not an integer in [0, k).
    case badLabel(row: Int, value: Double, classes: Int)
    /// The graph has an op the reference cannot reproduce (a random mask) or must not see (an unspecialized mode).
    case unsupported(String)

    public var description: String {
        switch self {
        case .missingValue(let kind, let name):
            return "no value bound for \(kind) \"\(name)\""
        case .shapeMismatch(let name, let e, let g):
            return "\"\(name)\" has shape \(g), expected \(e)"
        case .unknownBatchSize:
            return "cannot tell the batch size: bind the input \"x\" or pass batch:"
        case .badLabel(let row, let value, let k):
            return "label \(value) in row \(row) is not a class index in [0, \(k))"
        case .unsupported(let what):
            return what
        }
    }
}
