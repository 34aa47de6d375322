import NNIR

/// A dense float64 tensor for the reference interpreter: the full row-major shape, batch dimension included.
///
/// Class labels (i32 in the IR) are carried as Doubles holding integers.
///
///     let x = Tensor64(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])   // two samples of three features
public struct Tensor64: Hashable, Sendable, CustomStringConvertible {
    public var shape: [Int]
    public var data: [Double]

    public init(shape: [Int], data: [Double]) {
        precondition(shape.reduce(1, *) == data.count,
                     "Tensor64: shape \(shape) needs \(shape.reduce(1, *)) values, got \(data.count)")
        self.shape = shape
        self.data = data
    }

    public init(shape: [Int], repeating value: Double) {
        self.init(shape: shape, data: Array(repeating: value, count: shape.reduce(1, *)))
    }

    public static func scalar(_ v: Double) -> Tensor64 { Tensor64(shape: [], data: [v]) }

    public var count: Int { data.count }
    /// The single value of a one-element tensor.
    public var scalar: Double {
        precondition(data.count == 1, "Tensor64: \(shape) is not a scalar")
        return data[0]
    }

    public var description: String { "Tensor64\(shape)" }
}

extension Shape {
    /// The full shape of a value of this type when the batch size is `n`.
    public func full(batch n: Int) -> [Int] { (batched ? [n] : []) + dims }
}
