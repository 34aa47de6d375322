import NNIR

/// A user-facing compile error, reported at a site in model.swiftnn when there is one.
public struct CompileError: Error, CustomStringConvertible {
    public var message: String
    public var site: SourceSite?
    public init(_ message: String, at site: SourceSite? = nil) {
        self.message = message
        self.site = site
    }
    public var description: String { (site.map { "\($0): " } ?? "") + "error: " + message }
}

extension Graph {
    /// Reverse-mode differentiation of output "loss" with respect to every trainable parameter.
    ///
    /// Walks the forward graph backwards and appends gradient nodes to the same graph (the backward pass is
    /// IR). Adds an output "grad.<param>" for each parameter.
    public func differentiated() throws -> Graph {
        guard let loss = outputs["loss"], type(loss) == .scalar else {
            throw CompileError("the graph has no scalar loss to differentiate")
        }
        // Only values that depend on a trainable parameter and reach the loss get a gradient.
        var dependsOnParam = Array(repeating: false, count: nodes.count)
        for v in ids {
            if case .param(let p) = self[v].op { dependsOnParam[v.index] = param(named: p)?.trainable ?? false }
            else { dependsOnParam[v.index] = self[v].inputs.contains { dependsOnParam[$0.index] } }
        }
        let reaches = live(from: [loss])

        var e = GraphEditor(self)
        var adjoint: [ValueID: ValueID] = [loss: e.const(1)]
        for v in ids.reversed() where v <= loss && reaches.contains(v) && dependsOnParam[v.index] {
            guard let g = adjoint[v] else { continue }
            let n = self[v]
            e.site = n.site
            let grads = e.vjp(n, y: v, g: g)
            let allowed = n.op.info.differentiable
            for (i, (x, gx)) in zip(n.inputs, grads).enumerated() {
                guard let gx, dependsOnParam[x.index], allowed?.contains(i) ?? true else { continue }
                adjoint[x] = adjoint[x].map { e.add($0, gx) } ?? gx
            }
        }
        e.site = nil
        for p in params where p.trainable {
            guard let pv = ids.first(where: { self[$0].op == .param(p.name) }), let g = adjoint[pv] else {
                throw CompileError("parameter '\(p.name)' does not affect the loss, so it cannot be trained")
            }
            e.graph.outputs["grad.\(p.name)"] = g
        }
        return e.graph
    }
}
