/// Something that maps a symbolic tensor to another: a layer, an activation or a whole network.
///
/// Layers are classes so that applying the same layer twice shares its parameters.
public protocol Layer: AnyObject {
    func callAsFunction(_ x: Tensor) -> Tensor
}

/// Builds the list of layers inside `Sequential { … }`; `for`, `if` and `switch` work inside it.
@resultBuilder
public enum LayerBuilder {
    public static func buildExpression(_ layer: Layer) -> [Layer] { [layer] }
    public static func buildExpression(_ layers: [Layer]) -> [Layer] { layers }
    public static func buildBlock(_ parts: [Layer]...) -> [Layer] { parts.flatMap { $0 } }
    public static func buildArray(_ parts: [[Layer]]) -> [Layer] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [Layer]?) -> [Layer] { part ?? [] }
    public static func buildEither(first: [Layer]) -> [Layer] { first }
    public static func buildEither(second: [Layer]) -> [Layer] { second }
}

/// Layers applied in order, named like PyTorch's `nn.Sequential`: the parameters of the layer at index 2 are
/// `2.weight` and `2.bias`, and nested Sequentials give `1.0.weight`.
///
/// ```swift
/// let model = Sequential {
///     Linear(784, 256); ReLU()
///     Linear(256, 10)
/// }
/// ```
public final class Sequential: Layer {
    public let layers: [Layer]

    public init(@LayerBuilder _ build: () -> [Layer]) { layers = build() }
    public init(_ layers: [Layer]) { self.layers = layers }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let b = GraphBuilder.shared
        var h = x
        for (i, layer) in layers.enumerated() {
            b.scope.append(String(i))
            let before = b.graph.nodes.count
            h = layer(h)
            // The layer's output is `h` and its index path (h1, h1_0), as in the lectures and llm.c.
            if h.id.index >= before { b.graph.nodes[h.id.index].name = layerValueName("h", b.scope.joined(separator: ".")) }
            b.scope.removeLast()
        }
        return h
    }
}

/// A layer that is a fixed function of its input, such as an activation.
public class FunctionLayer: Layer {
    let op: Op
    let site: SourceSite

    init(_ op: Op, _ site: SourceSite) {
        self.op = op
        self.site = site
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { apply(op, [x], site: site) }
}

/// max(0, x)
public final class ReLU: FunctionLayer {
    public init(file: String = #filePath, line: Int = #line, column: Int = #column) {
        super.init(.unary(.relu), NNDSL.site(file, line, column))
    }
}

/// 1 / (1 + e^(−x))
public final class Sigmoid: FunctionLayer {
    public init(file: String = #filePath, line: Int = #line, column: Int = #column) {
        super.init(.unary(.sigmoid), NNDSL.site(file, line, column))
    }
}

/// tanh(x)
public final class Tanh: FunctionLayer {
    public init(file: String = #filePath, line: Int = #line, column: Int = #column) {
        super.init(.unary(.tanh), NNDSL.site(file, line, column))
    }
}

/// A residual block: `x + body(x)`, with `body` applied like a Sequential. Parameter names match a PyTorch
/// `nn.Sequential` subclass whose forward returns `x + super().forward(x)`: `1.0.weight`, `1.1.weight`, …
///
/// ```swift
/// Residual { Linear(256, 256); BatchNorm(256); ReLU(); Linear(256, 256) }
/// ```
public final class Residual: Layer {
    let body: Sequential
    let name: String?
    let site: SourceSite

    /// `name` prefixes the parameter names when the block is used outside a Sequential ("residual0" if not given).
    public init(name: String? = nil, @LayerBuilder _ build: () -> [Layer],
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        body = Sequential(build())
        self.name = name
        site = NNDSL.site(file, line, column)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let b = GraphBuilder.shared
        let prefix = name ?? (b.scope.isEmpty ? b.autoName("residual") : nil)
        if let prefix { b.scope.append(prefix) }
        let y = body(x)
        if prefix != nil { b.scope.removeLast() }
        let (tx, ty) = (b.graph.type(x.id), b.graph.type(y.id))
        guard tx == ty else { fail("Residual: the body maps \(tx.shape) to \(ty.shape); they must be equal to add", at: site) }
        return Tensor(b.add(.binary(.add), [x.id, y.id], site: site))
    }
}
