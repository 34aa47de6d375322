import NNIR

extension Program {
    /// The `fused` dump: each kernel with the nodes it computes; `→` marks values it stores.
    public func dumpKernels() -> String {
        let stored = materialized()
        var out = "// \(kind.rawValue) program of \(graph.name): \(kernels.count) kernels\n"
        for k in kernels {
            var head = "\(k.name): "
            switch k.kind {
            case .scalar: head += "scalar"
            case .gemm: head += k.body.isEmpty ? "gemm \(k.space)" : "gemm + epilogue over \(k.space)"
            case .loop: head += "loop over \(k.space)"
            case .rowwise: head += "row-wise over \(k.space)"
            case .window: head += "window \(k.space)"
            case .arenaUpdate(let ps): head += "one loop over the parameter arena \(k.space) for \(ps.joined(separator: ", "))"
            }
            out += head + "\n"
            for v in k.nodes {
                out += "    " + graph.line(v) + (stored.contains(v) || isAssign(v) ? "  →" : "") + "\n"
            }
        }
        return out
    }

    /// The `plan` dump: where each stored value lives and for how long, then the bytes saved.
    public func dumpPlan(_ plan: MemoryPlan) -> String {
        let layout = ParamLayout(graph)
        var out = "// memory plan of the \(kind.rawValue) program of \(graph.name), max batch \(plan.maxBatch), "
        out += "\(plan.elementSize)-byte elements\n"
        out += "params \(layout.total) elements, grads \(layout.total), "
        out += "state \(optimizerSlots(graph.config.optimizer).count)×\(layout.total)\n"
        for (v, s) in plan.storage.sorted(by: { $0.key < $1.key }) {
            guard case .arena(let off) = s, let life = plan.lifetimes[v] else { continue }
            let end = off + plan.bytes(of: v, graph.type(v))
            let as_ = plan.windowBytes[v].map { " as u8 \($0.shape) window bytes" } ?? ""   // Program+FusePooling.swift
            out += "\(v) \(graph.type(v))\(as_): arena [\(off), \(end)) live k\(life.lowerBound)..k\(life.upperBound)\n"
        }
        let saved = plan.naiveBytes - plan.arenaBytes
        let pct = plan.naiveBytes == 0 ? 0 : Double(saved) * 100 / Double(plan.naiveBytes)
        out += "arena: naive \(plan.naiveBytes) bytes, planned \(plan.arenaBytes) bytes, saved \(saved) bytes "
        out += "(\(formatNumber((pct * 10).rounded() / 10))%)\n"
        return out
    }
}
