import NNIR

/// The comments above each kernel: what it loops over, and each node it computes, with the kernel's names.
extension CEmitter {
    /// A node as the kernel's comment shows it, with the kernel's names:
    /// `h1 = relu h0 : f32 (n,256)  from model.swiftnn:7`.
    func commentLine(_ v: ValueID) -> String {
        let n = graph[v], cName = { (x: ValueID) in self.scope.names[x] ?? self.scope.registers[x] ?? self.namer.name(x) }
        var s = "\(cName(v)) = \(n.op.mnemonic)\(graph.attributeText(n.op))"
        if !n.inputs.isEmpty { s += " " + n.inputs.map(cName).joined(separator: ", ") }
        if !scope.perElement { s += " : \(n.type)" }
        if let site = n.site { s += "  from \(site.short)" }
        return s
    }

    /// What the optimizer loop over the whole parameter arena runs over (nothing for other kernels).
    func loopComment(_ k: Kernel) -> [String] {
        guard case .arenaUpdate(let ps) = k.kind else { return [] }
        let total = k.space.fixedCount, names = ps.map { graph[$0].name }
        let listed = names.count <= 6 ? names.joined(separator: ", ") : "\(names[0]) … \(names.last!) (\(names.count) parameters)"
        let slots = arenaOperands(k, first: ps[0]).slots.map { "state_\($0.rawValue)[i]" }
        let chunk = split(program.kernels.firstIndex { $0.name == k.name }!) == nil ? "" : " (this call: [i0, i1))"
        return ["\(graph.config.optimizer.name) update of \(listed):",
                "one loop over the \(total) floats of the parameter arena, i in [0, \(total))\(chunk).",
                "p[i] is a parameter, g[i] its gradient" + (slots.isEmpty ? "" : ", \(slots.joined(separator: " and ")) its optimizer state")
                    + "; each element is updated as:"]
    }
}
