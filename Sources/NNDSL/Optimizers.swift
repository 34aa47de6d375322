/// An optimizer. Its numbers are defaults that the trainer's command line can override (`--lr`, `--momentum`, …).
public protocol Optimizer {
    var spec: OptimizerSpec { get }
}

/// Stochastic gradient descent with optional (Nesterov) momentum, as `torch.optim.SGD`:
/// v ← μv + g;  p ← p − lr·v  (Nesterov: p ← p − lr·(g + μv)).
public struct SGD: Optimizer {
    public let spec: OptimizerSpec
    public init(learningRate: Double, momentum: Double = 0, nesterov: Bool = false,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        let s = site(file, line, column)
        if !(learningRate > 0) { fail("SGD learningRate must be positive, got \(learningRate)", at: s) }
        if !(momentum >= 0 && momentum < 1) { fail("SGD momentum must be in [0, 1), got \(momentum)", at: s) }
        if nesterov && momentum == 0 { fail("Nesterov momentum needs momentum > 0", at: s) }
        spec = .sgd(learningRate: learningRate, momentum: momentum, nesterov: nesterov)
    }
}

/// Adam with bias correction, as `torch.optim.Adam`:
/// m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  p ← p − lr·m̂/(√v̂ + ε) with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
public struct Adam: Optimizer {
    public let spec: OptimizerSpec
    public init(learningRate: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        let s = site(file, line, column)
        if !(learningRate > 0) { fail("Adam learningRate must be positive, got \(learningRate)", at: s) }
        for (n, b) in [("betas.0", betas.0), ("betas.1", betas.1)] where !(b >= 0 && b < 1) {
            fail("Adam \(n) must be in [0, 1), got \(b)", at: s)
        }
        if !(eps > 0) { fail("Adam eps must be positive, got \(eps)", at: s) }
        spec = .adam(learningRate: learningRate, beta1: betas.0, beta2: betas.1, eps: eps)
    }
}
