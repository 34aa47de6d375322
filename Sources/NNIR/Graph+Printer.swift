extension Graph {
    /// The deterministic text form used by `nncc compile --emit=graph|grad` and the golden tests.
    public func dump(stage: String) -> String {
        var out = "// \(stage) of \(name)\n"
        out += "// config: input \(config.inputDim), output \(config.outputDim), target \(config.target.rawValue), "
        out += "batch \(config.batchSize) (max \(config.maxBatch)), epochs \(config.epochs), seed \(config.seed), "
        out += "optimizer \(config.optimizer.name)"
        if config.schedule != .constant { out += ", schedule \(config.schedule.name) per \(config.scheduleInterval.rawValue)" }
        out += "\n"
        for p in params {
            out += "param \(p.name) (\(p.shape.map(String.init).joined(separator: ","))) init \(p.initializer)"
            out += p.counter ? " counter\n" : p.trainable ? "\n" : " buffer\n"
        }
        for h in hypers { out += "hyper \(h.name) = \(formatNumber(h.value))\n" }
        for v in ids { out += line(v) + "\n" }
        for (k, v) in outputs.map({ (name(of: $0.key), $0.value) }).sorted(by: { $0.0 < $1.0 }) {
            out += "output \(k) = \(v)\n"
        }
        return out
    }

    /// One node as `%3 = matmul[Bᵀ] %0, %1 : f32 (n,256)  // model.swiftnn:4`.
    public func line(_ v: ValueID) -> String {
        let n = self[v]
        var s = "\(v) = \(n.op.mnemonic)\(attributeText(n.op))"
        if !n.inputs.isEmpty { s += " " + n.inputs.map(\.description).joined(separator: ", ") }
        s += " : \(n.type)"
        if let site = n.site { s += "  // \(site.short)" }
        return s
    }
}

extension Graph {
    /// The op's attributes as dumps show them, with parameters, state and hyperparameters by name:
    /// ` "0.weight"`, ` "m[0.weight]"`, ` "lr"`.
    public func attributeText(_ op: Op) -> String {
        // The verifier prints nodes whose IDs are out of range too.
        if let p = op.paramReference, !params.indices.contains(p.index) { return op.attributeText }
        switch op {
        case .hyper(let h) where !hypers.indices.contains(h.index): return op.attributeText
        case .param(let p): return " \"\(self[p].name)\""
        case .state(let s): return " \"\(name(of: s))\""
        case .hyper(let h): return " \"\(self[h].name)\""
        case .assign(let b): return " \"\(name(of: b))\""
        default: return op.attributeText
        }
    }
}
