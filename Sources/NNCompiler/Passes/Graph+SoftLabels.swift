import NNIR

extension Graph {
    /// The train-mode forward graph against soft targets, for mixup and CutMix: the labels `y` (n) become a dense
    /// target distribution `y` (n, k) of f32 rows that sum to 1, and each cross-entropy term nll(logSoftmax(z), y)
    /// becomes −Σᵢⱼ yᵢⱼ·log softmax(z)ᵢⱼ, whose gradient is g·(softmax(z) − y). With yᵢ = λ·onehot(aᵢ) +
    /// (1−λ)·onehot(bᵢ) that is λ·CE(z, a) + (1−λ)·CE(z, b), the mixed loss of Zhang et al. and Yun et al.
    ///
    /// nil unless every use of the labels is such a cross-entropy (a hinge loss, label smoothing or a dense target
    /// has no soft-target form here), so only classifiers trained with plain cross-entropy get a `train_mixed`
    /// program; the hard-label `train` program is untouched.
    public func withSoftLabels() -> Graph? {
        guard let y = ids.first(where: { self[$0].op == .input("y") }), type(y).dtype == .i32 else { return nil }
        let uses = users()[y.index]
        guard !uses.isEmpty, uses.allSatisfy({ u in
            guard case .nll = self[u].op, self[u].inputs[1] == y else { return false }
            if case .logSoftmax = self[self[u].inputs[0]].op { return true } else { return false }
        }) else { return nil }
        let k = type(self[uses[0]].inputs[0]).shape.dims
        guard uses.allSatisfy({ type(self[$0].inputs[0]).shape.dims == k }) else { return nil }
        return rewritten { e, n in
            switch n.op {
            case .input("y"):
                return e.add(.input("y"), [], declared: TensorType(.f32, Shape(batched: true, k)))
            case .nll:
                let (logp, soft) = (n.inputs[0], n.inputs[1])
                return e.neg(e.add(.sumAll, [e.mul(soft, logp)]))
            default: return nil
            }
        }
    }
}
