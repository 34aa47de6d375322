import NNIR

extension Graph {
    /// The forward graph as one execution mode runs it: each `by_mode` node becomes the operand its switch
    /// selects, and outside training the running-statistics updates (`assign` effects) are dropped.
    ///
    /// The pipeline differentiates the specialized graphs, so training gets the gradient of dropout and batch
    /// statistics, while gradcheck checks the deterministic batch-statistics gradient without dropout.
    public func specialized(for mode: ExecutionMode) -> Graph {
        let picked = rewritten { _, n in
            guard case .byMode(let s) = n.op else { return nil }
            return mode.isOn(s) ? n.inputs[0] : n.inputs[1]
        }
        return picked.removingDeadCode(keepEffects: mode == .train)
    }
}
