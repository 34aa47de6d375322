/// The element type of a tensor: `f32` for values, `i32` for class labels.
public enum DType: String, Codable, Hashable, Sendable {
    case f32, i32
}

/// A static shape whose leading batch dimension, when present, is symbolic.
///
/// Only the batch dimension is known at run time (`n`, at most the compiled maximum);
/// every other dimension is fixed at compile time. `Shape(batched: true, [784])` prints as `(n,784)`.
public struct Shape: Hashable, Codable, Sendable, CustomStringConvertible {
    public var batched: Bool
    /// The dimensions after the batch dimension.
    public var dims: [Int]

    public init(batched: Bool = false, _ dims: [Int]) {
        self.batched = batched
        self.dims = dims
    }

    public static let scalar = Shape([])

    public var isScalar: Bool { !batched && dims.isEmpty }
    public var rank: Int { dims.count + (batched ? 1 : 0) }
    /// Elements per sample (batched) or in total (unbatched).
    public var fixedCount: Int { dims.reduce(1, *) }
    public func count(batch n: Int) -> Int { fixedCount * (batched ? n : 1) }

    /// The shape without its batch dimension.
    public var unbatched: Shape { Shape(dims) }

    public var description: String {
        let parts = (batched ? ["n"] : []) + dims.map(String.init)
        return "(" + parts.joined(separator: ",") + ")"
    }
}

/// The type of an SSA value.
public struct TensorType: Hashable, Codable, Sendable, CustomStringConvertible {
    public var dtype: DType
    public var shape: Shape

    public init(_ dtype: DType = .f32, _ shape: Shape) {
        self.dtype = dtype
        self.shape = shape
    }

    public static let scalar = TensorType(.f32, .scalar)
    public var description: String { "\(dtype) \(shape)" }
}

/// Where in model.swiftnn a node came from, for diagnostics and for the dumps.
public struct SourceSite: Hashable, Codable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
    /// The site with only the file's last path component, for dumps that must not depend on the checkout path.
    public var short: String { "\(file.split(separator: "/").last.map(String.init) ?? file):\(line)" }
}
