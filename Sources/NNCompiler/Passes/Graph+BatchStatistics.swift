import NNIR

extension Graph {
    /// The training-mode forward graph of `update_bn`: each running-statistics update that BatchNorm declares,
    /// `running ← keep·running + momentum·s` (an `assign` to a buffer), writes the batch statistic `s` itself
    /// instead, so that the runtime can average the batches' statistics with equal weights (PyTorch's
    /// `torch.optim.swa_utils.update_bn`, which runs the model in train mode with momentum None). Nil when the graph
    /// updates no running statistics (a model without BatchNorm has nothing to recompute).
    func writingBatchStatistics() throws -> Graph? {
        var assigns = 0
        var unmatched: Node?
        let g = rewritten { e, n in
            guard case .assign(.param(let p)) = n.op else { return nil }
            assigns += 1
            guard let s = Self.batchStatistic(n.inputs[0], running: p, in: e.graph) else {
                unmatched = n
                return nil
            }
            return e.add(n.op, [s])
        }
        if let n = unmatched {
            throw Diagnostic.error("internal: update_bn: a running-statistics update is not keep·running + momentum·s", at: n.site)
        }
        return assigns == 0 ? nil : g.removingDeadCode(keepEffects: true)
    }

    /// `s` of `keep·running + momentum·s`, as the DSL's BatchNorm layers build it (either order of the sum's terms).
    private static func batchStatistic(_ v: ValueID, running p: ParamID, in g: Graph) -> ValueID? {
        guard g[v].op == .binary(.add) else { return nil }
        var statistic: ValueID?, keeps = 0
        for term in g[v].inputs {
            guard g[term].op == .binary(.mul), g[term].inputs.count == 2 else { return nil }
            let (a, b) = (g[term].inputs[0], g[term].inputs[1])
            if g[b].op == .param(p) || g[a].op == .param(p) { keeps += 1; continue }
            statistic = g[a].op.info.kind == .source && g[a].type.shape.isScalar ? b : a
        }
        return keeps == 1 ? statistic : nil
    }
}
