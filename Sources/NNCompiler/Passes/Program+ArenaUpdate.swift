import NNIR

/// How an operand of an optimizer update relates to the parameter being updated, so that the updates of
/// different parameters can be compared and run as one loop over the flat arenas.
enum ArenaOperand: Hashable, CustomStringConvertible {
    case param                 // params[offset(p) + i]
    case grad                  // grads[offset(p) + i]
    case state(StateSlot)      // state[slot · params_numel + offset(p) + i]
    case scalar(ValueID)       // shared by every parameter
    case local(Int)            // an earlier node of the same update

    var description: String {
        switch self {
        case .param: return "P"
        case .grad: return "G"
        case .state(let s): return "S:\(s.rawValue)"
        case .scalar(let v): return "\(v)"
        case .local(let k): return "b\(k)"
        }
    }
}

extension Program {
    /// The parameter a kernel updates, when it is an optimizer update of exactly one trainable parameter.
    func updatedParam(_ k: Kernel) -> ParamID? {
        guard k.kind == .loop else { return nil }
        let targets = k.body.compactMap { v -> ParamID? in
            if case .assign(.param(let p)) = graph[v].op, graph[p].trainable { return p } else { return nil }
        }
        return targets.count == 1 ? targets[0] : nil
    }

    /// Classifies an operand of the update of parameter `p`; nil when it is neither aligned with `p` nor shared.
    func arenaOperand(_ x: ValueID, of p: ParamID, in body: [ValueID]) -> ArenaOperand? {
        if let k = body.firstIndex(of: x) { return .local(k) }
        if graph.type(x).shape.isScalar { return .scalar(x) }
        switch graph[x].op {
        case .param(p): return .param
        case .state(let s) where s.param == p: return .state(s.slot)
        default: return graph.gradient(of: p) == x ? .grad : nil
        }
    }

    /// The update's structure with the parameter abstracted away: equal for parameters updated the same way.
    func updateSignature(_ k: Kernel, _ p: ParamID) -> String? {
        var parts: [String] = []
        for v in k.body {
            let n = graph[v]
            var ops: [String] = []
            for x in n.inputs {
                guard let o = arenaOperand(x, of: p, in: k.body) else { return nil }
                ops.append(o.description)
            }
            var op = n.op.mnemonic
            switch n.op {
            case .assign(.param(p)): op += "=P"
            case .assign(.state(let s)) where s.param == p: op += "=S:\(s.slot.rawValue)"
            case .assign: return nil
            default: break
            }
            parts.append(op + "(" + ops.joined(separator: ",") + ")")
        }
        return parts.joined(separator: ";")
    }

    /// Merges the per-parameter optimizer updates that share a signature into one loop over the flat parameter,
    /// gradient and state arenas (as llm.c does), when those parameters are contiguous in the arena.
    mutating func mergeOptimizerUpdates() {
        var groups: [String: [Int]] = [:]
        for (i, k) in kernels.enumerated() {
            if let p = updatedParam(k), let sig = updateSignature(k, p) { groups[sig, default: []].append(i) }
        }
        var remove = Set<Int>()
        for (_, members) in groups.sorted(by: { $0.value[0] < $1.value[0] }) where members.count > 1 {
            let ps = members.map { updatedParam(kernels[$0])! }.sorted { layout.offset($0) < layout.offset($1) }
            guard layout.isContiguous(ps) else { continue }
            let first = members.first { updatedParam(kernels[$0]) == ps[0] }!
            let total = ps.reduce(0) { $0 + layout.count($1) }
            var merged = kernels[first]
            merged.kind = .arenaUpdate(params: ps)
            merged.space = Shape([total])
            let last = members.max()!
            kernels[last] = merged
            remove.formUnion(members.filter { $0 != last })
        }
        kernels = kernels.enumerated().filter { !remove.contains($0.offset) }.map(\.element)
    }
}
