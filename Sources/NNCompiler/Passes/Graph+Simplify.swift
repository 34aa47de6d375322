import Foundation
import NNIR

extension Graph {
    /// Common-subexpression elimination: a node equal to an earlier one (same op, operands and type) is
    /// replaced by it. Effects and random draws (two dropout masks of one shape are two draws) are never merged.
    public func eliminatingCommonSubexpressions() -> Graph {
        struct Key: Hashable { var op: Op; var inputs: [ValueID]; var type: TensorType }
        var seen: [Key: ValueID] = [:]
        return rewritten { e, n in
            if case .assign = n.op { return nil }
            if n.op.isRandom { return nil }
            let key = Key(op: n.op, inputs: n.inputs, type: n.type)
            if let v = seen[key] { return v }
            seen[key] = ValueID(e.graph.nodes.count)
            return nil
        }
    }

    /// Algebraic identities that autodiff leaves behind: x·1, 1·x, x+0, 0+x, x/1, −(−x), and folding of
    /// operations on constants.
    public func simplifyingAlgebra() -> Graph {
        rewritten { e, n in
            let g = e.graph
            func keepsType(_ v: ValueID) -> Bool { g.type(v) == n.type }
            func constant(_ v: ValueID) -> Double? {
                if case .constant(let c) = e.graph[v].op { return c } else { return nil }
            }
            // For x·1 and 1·x, also a 1 repeated to a tensor (the gradient of a sum_all seeded with 1).
            func one(_ v: ValueID) -> Bool {
                constant(v) == 1 || e.graph[v].op == .broadcast && constant(e.graph[v].inputs[0]) == 1
            }
            switch n.op {
            case .binary(let f):
                let (a, b) = (n.inputs[0], n.inputs[1])
                // Folding uses the interpreter's semantics, so the two cannot drift apart.
                if let ca = constant(a), let cb = constant(b) { return e.const(f.apply(ca, cb)) }
                switch f {
                case .mul where one(b) && keepsType(a): return a
                case .mul where one(a) && keepsType(b): return b
                case .add where constant(b) == 0 && keepsType(a): return a
                case .add where constant(a) == 0 && keepsType(b): return b
                case .sub where constant(b) == 0 && keepsType(a): return a
                case .div where constant(b) == 1 && keepsType(a): return a
                default: return nil
                }
            case .unary(.neg):
                if case .unary(.neg) = e.graph[n.inputs[0]].op { return e.graph[n.inputs[0]].inputs[0] }
                if let c = constant(n.inputs[0]) { return e.const(-c) }
                return nil
            default: return nil
            }
        }
    }

    /// The standard clean-up after differentiation: algebra, CSE, then dead code.
    public func simplified() -> Graph {
        simplifyingAlgebra().eliminatingCommonSubexpressions().removingDeadCode()
    }
}
