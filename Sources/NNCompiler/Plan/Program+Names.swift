import NNIR

extension Program {
    /// Names each kernel after the main value it computes and its ops, for its C function and the profile:
    /// `k_h1_matmul_add_relu`, `k_dW0_matmul`, `k_adam_update` (the loop over the whole parameter arena),
    /// `k_sgd_update_W0` (one parameter's update). Names are unique in the program.
    mutating func nameKernels() {
        let stored = materialized(), namer = ValueNamer(graph)
        let update = graph.config.optimizer.name + "_update"
        var taken = Set<String>()
        for i in kernels.indices {
            let k = kernels[i]
            var words: [String] = []
            for v in k.nodes {
                let w = graph[v].op.mnemonic
                if !words.contains(w), w != "assign", w != "broadcast" { words.append(w) }
            }
            if words.isEmpty { words = k.nodes.map { graph[$0].op.mnemonic } }   // a lone broadcast
            let name: String
            if case .arenaUpdate = k.kind {
                kernels[i].principal = graph.config.optimizer.name
                name = "k_" + update
            } else if let p = updatedParam(k) {
                kernels[i].principal = graph.shortName(p)
                name = "k_" + update + "_" + kernels[i].principal
            } else {
                let main = k.nodes.first { (stored.contains($0) || isAssign($0)) && !graph.type($0).shape.isScalar }
                kernels[i].principal = (main ?? k.nodes.first).map(namer.name) ?? "empty"
                // Words the value's name already says are left out: `k_softmax_ce_h4`, not `k_softmax_ce_h4_softmax_ce`.
                let said = Set(kernels[i].principal.split(separator: "_").map(String.init))
                name = (["k", kernels[i].principal] + words.prefix(4).filter { !$0.split(separator: "_").allSatisfy { said.contains(String($0)) } })
                    .joined(separator: "_")
            }
            kernels[i].name = unique(name, in: &taken)
        }
    }
}

/// `base`, or `base_2`, `base_3`, … when it is taken; records the result as taken.
func unique(_ base: String, in taken: inout Set<String>) -> String {
    var name = base, n = 1
    while !taken.insert(name).inserted {
        n += 1
        name = "\(base)_\(n)"
    }
    return name
}
