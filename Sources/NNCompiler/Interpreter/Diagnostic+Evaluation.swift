import NNIR

/// Why the reference interpreter could not evaluate a graph.
extension Diagnostic {
    /// An `input` or `param` node has no value to read.
    static func missingValue(kind: String, name: String) -> Diagnostic { .error("no value bound for \(kind) \"\(name)\"") }

    /// A bound tensor does not have the shape the node declares (full shape, batch included).
    static func shapeMismatch(name: String, expected: [Int], got: [Int]) -> Diagnostic {
        .error("\"\(name)\" has shape \(got), expected \(expected)")
    }

    /// The graph has batched values but no batched input fixes `n`.
    static let unknownBatchSize = Diagnostic.error("cannot tell the batch size: bind the input \"x\" or pass batch:")

    /// A class label is not an integer in [0, k).
    static func badLabel(row: Int, value: Double, classes k: Int) -> Diagnostic {
        .error("label \(value) in row \(row) is not a class index in [0, \(k))")
    }

    /// The graph has an op the reference cannot reproduce (a random mask) or must not see (an unspecialized mode).
    static func unsupported(_ what: String) -> Diagnostic { .error(what) }
}
