import NNIR

extension Graph {
    /// Replaces nll(logSoftmax(z), y) by one softmax-cross-entropy kernel, and its gradient
    /// logSoftmaxGrad(nllGrad(g, y, logp), logp) by g·(softmax(z) − onehot(y)). The log-softmax itself then
    /// dies unless something else uses it.
    public func fusingSoftmaxCrossEntropy() -> Graph {
        rewritten { e, n in
            func logSoftmaxInput(_ v: ValueID) -> ValueID? {
                if case .logSoftmax = e.graph[v].op { return e.graph[v].inputs[0] } else { return nil }
            }
            switch n.op {
            case .nll:
                guard let z = logSoftmaxInput(n.inputs[0]) else { return nil }
                return e.add(.softmaxCrossEntropy, [z, n.inputs[1]])
            case .logSoftmaxGrad:
                let (gin, logp) = (n.inputs[0], n.inputs[1])
                guard case .nllGrad = e.graph[gin].op, let z = logSoftmaxInput(logp),
                      e.graph[gin].inputs[2] == logp else { return nil }
                let (g, y) = (e.graph[gin].inputs[0], e.graph[gin].inputs[1])
                return e.add(.softmaxCrossEntropyGrad, [g, z, y])
            default: return nil
            }
        }.removingDeadCode()
    }
}
