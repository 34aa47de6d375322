extension Graph {
    /// Checks the invariants every pass must keep: operands defined before use, types that follow the shape
    /// rules, parameters and hyperparameters declared, outputs in range. Throws the first violation.
    public func verify() throws {
        for v in ids {
            let n = self[v]
            for i in n.inputs where i.index >= v.index || i.index < 0 {
                throw Diagnostic.error("\(line(v)): operand \(i) is not defined before its use")
            }
            let t: TensorType
            do { t = try n.op.resultType(n.inputs.map { type($0) }, declared: n.type) } catch let e as Diagnostic {
                throw Diagnostic.error("\(line(v)): \(e.message)")
            }
            if t != n.type { throw Diagnostic.error("\(line(v)): type should be \(t)") }
            if let p = n.op.paramReference {
                guard params.indices.contains(p.index) else { throw Diagnostic.error("\(line(v)): undeclared parameter") }
                if n.type != TensorType(.f32, Shape(self[p].shape)) { throw Diagnostic.error("\(line(v)): parameter shape differs") }
            }
            if case .hyper(let h) = n.op, !hypers.indices.contains(h.index) {
                throw Diagnostic.error("\(line(v)): undeclared hyperparameter")
            }
        }
        for (k, v) in outputs where v.index < 0 || v.index >= nodes.count {
            throw Diagnostic.error("output \(k) refers to \(v), which does not exist")
        }
    }
}
