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
        for (k, v) in outputs.sorted(by: { $0.key < $1.key }) { out += "output \(k) = \(v)\n" }
        return out
    }

    /// One node as `%3 = matmul[Bᵀ] %0, %1 : f32 (n,256)  // model.swiftnn:4`.
    public func line(_ v: ValueID) -> String {
        let n = self[v]
        var s = "\(v) = \(n.op.mnemonic)\(n.op.attributeText)"
        if !n.inputs.isEmpty { s += " " + n.inputs.map(\.description).joined(separator: ", ") }
        s += " : \(n.type)"
        if let site = n.site { s += "  // \(site.short)" }
        return s
    }
}
