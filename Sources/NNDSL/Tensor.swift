/// A symbolic tensor: a value in the graph being built. Nothing is computed while model.swiftnn runs.
///
/// ```swift
/// let x = Input(784)
/// let h = x |> Linear(784, 256) |> ReLU()
/// let y = Linear(256, 10)(h) + Linear(784, 10)(x)   // a skip connection
/// ```
public struct Tensor {
    let id: ValueID

    /// The shape without the batch dimension: `[256]` for a (n, 256) activation.
    public var shape: [Int] { GraphBuilder.shared.graph.type(id).shape.dims }

    init(_ id: ValueID) { self.id = id }
}

/// The model's input: `features` floats per sample, batched.
public func Input(_ features: Int, file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    let b = GraphBuilder.shared
    let s = site(file, line, column)
    if b.input != nil { fail("a model has one Input; this is the second", at: s) }
    if features <= 0 { fail("Input needs a positive number of features, got \(features)", at: s) }
    let v = b.add(.input("x"), [], declared: TensorType(.f32, Shape(batched: true, [features])), site: s)
    b.input = v
    return Tensor(v)
}

/// The model's input as images: `channels`×`height`×`width` floats per sample (n, C, H, W), read from each
/// data row in row-major order (an IDX image of 28×28 is `Input(channels: 1, height: 28, width: 28)`).
public func Input(channels: Int, height: Int, width: Int,
                  file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    let b = GraphBuilder.shared
    let s = site(file, line, column)
    if b.input != nil { fail("a model has one Input; this is the second", at: s) }
    if channels <= 0 || height <= 0 || width <= 0 {
        fail("Input needs positive sizes, got channels \(channels), height \(height), width \(width)", at: s)
    }
    let v = b.add(.input("x"), [], declared: TensorType(.f32, Shape(batched: true, [channels, height, width])), site: s)
    b.input = v
    return Tensor(v)
}

/// Adds an op on symbolic tensors. Operators cannot capture a call site, so their errors point at the
/// nearest operand that has one.
func apply(_ op: Op, _ xs: [Tensor], site: SourceSite?) -> Tensor {
    let b = GraphBuilder.shared
    let where_ = site ?? xs.lazy.compactMap { b.graph[$0.id].site }.first
    return Tensor(b.add(op, xs.map(\.id), site: where_))
}

func constant(_ c: Double) -> Tensor { apply(.constant(c), [], site: nil) }

infix operator |>: AdditionPrecedence

extension Tensor {
    /// Applies a layer: `x |> Linear(784, 256) |> ReLU()`.
    public static func |> (x: Tensor, layer: Layer) -> Tensor { layer(x) }

    public static func + (a: Tensor, b: Tensor) -> Tensor { binary(.add, a, b) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { binary(.sub, a, b) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { binary(.mul, a, b) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { binary(.div, a, b) }
    public static func * (a: Tensor, c: Double) -> Tensor { binary(.mul, a, constant(c)) }
    public static func * (c: Double, a: Tensor) -> Tensor { binary(.mul, constant(c), a) }
    public static func + (a: Tensor, c: Double) -> Tensor { binary(.add, a, constant(c)) }
    public static prefix func - (a: Tensor) -> Tensor { apply(.unary(.neg), [a], site: nil) }

    static func binary(_ f: BinaryFn, _ a: Tensor, _ b: Tensor) -> Tensor { apply(.binary(f), [a, b], site: nil) }
}

public func relu(_ x: Tensor, file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    apply(.unary(.relu), [x], site: site(file, line, column))
}
public func sigmoid(_ x: Tensor, file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    apply(.unary(.sigmoid), [x], site: site(file, line, column))
}
public func tanh(_ x: Tensor, file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    apply(.unary(.tanh), [x], site: site(file, line, column))
}
public func exp(_ x: Tensor) -> Tensor { apply(.unary(.exp), [x], site: nil) }
public func log(_ x: Tensor) -> Tensor { apply(.unary(.log), [x], site: nil) }

/// Joins tensors along the feature dimension, as `torch.cat(…, dim=1)`: (n,p) and (n,q) give (n,p+q).
public func concat(_ parts: [Tensor], file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    let s = site(file, line, column)
    guard let first = parts.first else { fail("concat needs at least one tensor", at: s) }
    return parts.dropFirst().reduce(first) { apply(.concat, [$0, $1], site: s) }
}

public func concat(_ parts: Tensor..., file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    concat(parts, file: file, line: line, column: column)
}
