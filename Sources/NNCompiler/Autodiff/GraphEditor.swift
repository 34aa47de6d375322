import NNIR

/// Appends nodes to a graph with the shape rules applied, for passes that write IR: autodiff, the optimizer
/// lowering and the rewrites. A shape error here is a compiler bug, so it stops with the offending op.
struct GraphEditor {
    var graph: Graph
    /// The site stamped on new nodes (the forward node a gradient belongs to).
    var site: SourceSite?

    init(_ graph: Graph) { self.graph = graph }

    @discardableResult
    mutating func add(_ op: Op, _ xs: [ValueID], declared: TensorType? = nil) -> ValueID {
        do { return try graph.add(op, xs, declared: declared, site: site) } catch {
            fatalError("internal compiler error: \(op.mnemonic) on \(xs.map { graph.type($0) }): \(error)")
        }
    }

    func type(_ v: ValueID) -> TensorType { graph.type(v) }

    /// `v`, named for the generated C (`Node.name`).
    mutating func named(_ name: String, _ v: ValueID) -> ValueID {
        graph.nodes[v.index].name = name
        return v
    }

    mutating func const(_ c: Double) -> ValueID { add(.constant(c), []) }
    mutating func unary(_ f: UnaryFn, _ a: ValueID) -> ValueID { add(.unary(f), [a]) }
    mutating func add(_ a: ValueID, _ b: ValueID) -> ValueID { add(.binary(.add), [a, b]) }
    mutating func sub(_ a: ValueID, _ b: ValueID) -> ValueID { add(.binary(.sub), [a, b]) }
    mutating func mul(_ a: ValueID, _ b: ValueID) -> ValueID { add(.binary(.mul), [a, b]) }
    mutating func div(_ a: ValueID, _ b: ValueID) -> ValueID { add(.binary(.div), [a, b]) }
    mutating func pow(_ a: ValueID, _ b: ValueID) -> ValueID { add(.binary(.pow), [a, b]) }
    mutating func neg(_ a: ValueID) -> ValueID { unary(.neg, a) }
    mutating func matmul(_ a: ValueID, _ b: ValueID, transA: Bool = false, transB: Bool = false) -> ValueID {
        add(.matmul(transA: transA, transB: transB), [a, b])
    }

    /// `g` repeated to type `t` (from a scalar, or from per-sample dimensions to a batch).
    mutating func broadcast(_ g: ValueID, to t: TensorType) -> ValueID {
        type(g) == t ? g : add(.broadcast, [g], declared: t)
    }

    /// The gradient `g` of a broadcast result, summed back to the operand's type `t`.
    mutating func unbroadcast(_ g: ValueID, to t: TensorType) -> ValueID {
        let gt = type(g)
        if gt.shape == t.shape { return g }
        if t.shape.isScalar { return add(.sumAll, [g]) }
        if t.shape == Shape(batched: true, []), gt.shape.batched { return add(.sumRow, [g]) }
        if gt.shape.batched && !t.shape.batched && gt.shape.dims == t.shape.dims { return add(.sumBatch, [g]) }
        return add(.sumTo, [g], declared: TensorType(.f32, t.shape))
    }
}
