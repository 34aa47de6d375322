extension Graph {
    /// Checks the invariants every pass must keep: operands defined before use, types that follow the shape
    /// rules, parameters and hyperparameters declared, outputs in range. Throws the first violation.
    public func verify() throws {
        for v in ids {
            let n = self[v]
            for i in n.inputs where i.index >= v.index || i.index < 0 {
                throw TypeError("\(line(v)): operand \(i) is not defined before its use")
            }
            let t: TensorType
            do { t = try n.op.resultType(n.inputs.map { type($0) }, declared: n.type) } catch let e as TypeError {
                throw TypeError("\(line(v)): \(e.message)")
            }
            if t != n.type { throw TypeError("\(line(v)): type should be \(t)") }
            switch n.op {
            case .param(let name):
                guard let p = param(named: name) else { throw TypeError("\(line(v)): undeclared parameter") }
                if n.type != TensorType(.f32, Shape(p.shape)) { throw TypeError("\(line(v)): parameter shape differs") }
            case .hyper(let name) where hyper(named: name) == nil:
                throw TypeError("\(line(v)): undeclared hyperparameter")
            default: break
            }
        }
        for (k, v) in outputs where v.index < 0 || v.index >= nodes.count {
            throw TypeError("output \(k) refers to \(v), which does not exist")
        }
    }
}
