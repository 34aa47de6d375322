import NNIR

extension Graph {
    /// Rebuilds the graph node by node. `transform` sees each node with its operands already remapped and
    /// returns either a replacement value in the new graph or nil to copy the node. Outputs follow the remap; an
    /// unnamed value that replaces a named node takes its name (a dropout layer's output, in training, is the
    /// product that the mode switch selects).
    func rewritten(_ transform: (inout GraphEditor, Node) -> ValueID?) -> Graph {
        var e = GraphEditor(self)
        e.graph.nodes = []
        var remap: [ValueID] = []
        remap.reserveCapacity(nodes.count)
        for n in nodes {
            var m = n
            m.inputs = n.inputs.map { remap[$0.index] }
            e.site = n.site
            if let r = transform(&e, m) {
                if e.graph.nodes[r.index].name == nil { e.graph.nodes[r.index].name = n.name }
                remap.append(r)
                continue
            }
            e.graph.nodes.append(m)
            remap.append(ValueID(e.graph.nodes.count - 1))
        }
        e.graph.outputs = outputs.mapValues { remap[$0.index] }
        return e.graph
    }

    /// Keeps only the nodes that the outputs and (unless `keepEffects` is false) the `assign` effects depend on.
    public func removingDeadCode(keepEffects: Bool = true) -> Graph {
        let effects = !keepEffects ? [] : ids.filter { if case .assign = self[$0].op { return true } else { return false } }
        let keep = live(from: Array(outputs.values) + effects)
        var e = GraphEditor(self)
        e.graph.nodes = []
        var remap: [ValueID: ValueID] = [:]
        for v in ids where keep.contains(v) {
            var m = self[v]
            m.inputs = m.inputs.map { remap[$0]! }
            e.graph.nodes.append(m)
            remap[v] = ValueID(e.graph.nodes.count - 1)
        }
        e.graph.outputs = outputs.mapValues { remap[$0]! }
        return e.graph
    }
}
