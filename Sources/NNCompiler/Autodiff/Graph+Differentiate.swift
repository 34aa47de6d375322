import NNIR

extension Graph {
    /// Reverse-mode differentiation of output "loss" with respect to every trainable parameter.
    ///
    /// Walks the forward graph backwards and appends gradient nodes to the same graph (the backward pass is
    /// IR). Adds the output `.gradient(p)` for each trainable parameter p.
    public func differentiated() throws -> Graph {
        guard let loss = outputs[.loss], type(loss) == .scalar else {
            throw Diagnostic.error("the graph has no scalar loss to differentiate")
        }
        // Every node of a trainable parameter seeds the walk; the first one carries its gradient.
        let seeds = ids.filter { v in
            if case .param(let p) = self[v].op { return self[p].trainable }
            return false
        }
        var (g, adjoints) = differentiated(loss, withRespectTo: seeds)
        for p in paramIDs where self[p].trainable {
            guard let pv = node(of: p), let gp = adjoints[seeds.firstIndex(of: pv)!] else {
                throw Diagnostic.error("parameter '\(self[p].name)' does not affect the loss, so it cannot be trained")
            }
            g.outputs[.gradient(p)] = gp
        }
        return g
    }

    /// Reverse-mode differentiation of the scalar `loss` with respect to arbitrary values (batched inputs,
    /// intermediate activations, parameters): the graph with the backward pass appended, and the adjoint of
    /// each of `sources` in order, or nil where a source does not reach the loss. Adds no outputs.
    ///
    /// Only values that depend on a source and reach the loss get a gradient.
    public func differentiated(_ loss: ValueID, withRespectTo sources: [ValueID]) -> (Graph, [ValueID?]) {
        precondition(type(loss) == .scalar, "differentiated: the loss \(loss) must be a scalar")
        let isSource = Set(sources)
        var dependsOnSource = Array(repeating: false, count: nodes.count)
        for v in ids {
            dependsOnSource[v.index] = isSource.contains(v) || self[v].inputs.contains { dependsOnSource[$0.index] }
        }
        let reaches = live(from: [loss])

        var e = GraphEditor(self)
        var adjoint: [ValueID: ValueID] = [loss: e.const(1)]
        for v in ids.reversed() where v <= loss && reaches.contains(v) && dependsOnSource[v.index] {
            guard let g = adjoint[v] else { continue }
            // The gradient of h1 is dh1, of W0 dW0 (when it is not already the gradient of a later value).
            if g.index >= nodes.count, e.graph[g].name == nil, e.graph[g].op.info.kind != .source, let x = properName(v) {
                e.graph.nodes[g.index].name = "d" + x
            }
            let n = self[v]
            e.site = n.site
            let grads = e.vjp(n, y: v, g: g)
            let allowed = n.op.info.differentiable
            for (i, (x, gx)) in zip(n.inputs, grads).enumerated() {
                guard let gx, dependsOnSource[x.index], allowed?.contains(i) ?? true else { continue }
                adjoint[x] = adjoint[x].map { e.add($0, gx) } ?? gx
            }
        }
        return (e.graph, sources.map { adjoint[$0] })
    }
}
