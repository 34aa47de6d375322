/// An optimizer. Its numbers are defaults that the trainer's command line can override (`--lr`, `--momentum`,
/// `--weight-decay`, …). Defaults and update rules are PyTorch's (`torch.optim`).
public protocol Optimizer {
    var spec: OptimizerSpec { get }
}

/// Stochastic gradient descent with optional (Nesterov) momentum, as `torch.optim.SGD`:
/// v ← μv + g;  p ← p − lr·v  (Nesterov: p ← p − lr·(g + μv)). `weightDecay` adds wd·p to the gradient.
///
/// `momentumForm: .velocity` is the lectures' second formulation, v ← μv − lr·g;  p ← p + v (Nesterov:
/// p ← p + μv − lr·g). With a constant learning rate both forms take the same steps.
public struct SGD: Optimizer {
    /// Where the learning rate enters the momentum.
    public enum MomentumForm: Sendable {
        /// v ← μv + g; p ← p − lr·v (torch.optim.SGD).
        case pytorch
        /// v ← μv − lr·g; p ← p + v (CS231n).
        case velocity
    }
    public let spec: OptimizerSpec
    public init(learningRate: Double, momentum: Double = 0, nesterov: Bool = false, weightDecay: Double = 0,
                momentumForm: MomentumForm = .pytorch,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        let s = site(file, line, column)
        if !(learningRate > 0) { fail("SGD learningRate must be positive, got \(learningRate)", at: s) }
        if !(momentum >= 0 && momentum < 1) { fail("SGD momentum must be in [0, 1), got \(momentum)", at: s) }
        if nesterov && momentum == 0 { fail("Nesterov momentum needs momentum > 0", at: s) }
        if momentumForm == .velocity && momentum == 0 { fail("momentumForm: .velocity needs momentum > 0", at: s) }
        checkWeightDecay("SGD", weightDecay, s)
        spec = .sgd(learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay,
                    velocity: momentumForm == .velocity)
    }
}

/// Adam with bias correction, as `torch.optim.Adam`:
/// m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  p ← p − lr·m̂/(√v̂ + ε) with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
/// `weightDecay` is L2 regularization: wd·p is added to g before the moments (compare `AdamW`).
/// `amsgrad` (Reddi et al., "On the Convergence of Adam and Beyond"), as torch's `amsgrad=True`: the denominator
/// uses the running maximum v_max ← max(v_max, v) instead of v, so the step size never grows back.
public struct Adam: Optimizer {
    public let spec: OptimizerSpec
    public init(learningRate: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                weightDecay: Double = 0, amsgrad: Bool = false,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        let s = site(file, line, column)
        checkAdam("Adam", learningRate, betas, eps, s)
        checkWeightDecay("Adam", weightDecay, s)
        spec = .adam(learningRate: learningRate, beta1: betas.0, beta2: betas.1, eps: eps, weightDecay: weightDecay,
                     amsgrad: amsgrad)
    }
}

/// Adam with decoupled weight decay, as `torch.optim.AdamW`: p ← p − lr·wd·p, then Adam's step with the plain
/// gradient. PyTorch's default weightDecay is 0.01. `amsgrad` as for `Adam`.
public struct AdamW: Optimizer {
    public let spec: OptimizerSpec
    public init(learningRate: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                weightDecay: Double = 0.01, amsgrad: Bool = false,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        let s = site(file, line, column)
        checkAdam("AdamW", learningRate, betas, eps, s)
        checkWeightDecay("AdamW", weightDecay, s)
        spec = .adam(learningRate: learningRate, beta1: betas.0, beta2: betas.1, eps: eps, weightDecay: weightDecay,
                     decoupled: true, amsgrad: amsgrad)
    }
}

/// AdaGrad, as `torch.optim.Adagrad` (s starts at `initialAccumulatorValue`, default 0): s ← s + g²;
/// p ← p − lr/(1 + (t−1)·lrDecay) · g/(√s + ε).
public struct AdaGrad: Optimizer {
    public let spec: OptimizerSpec
    public init(learningRate: Double = 0.01, lrDecay: Double = 0, weightDecay: Double = 0, eps: Double = 1e-10,
                initialAccumulatorValue: Double = 0,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        let s = site(file, line, column)
        if !(learningRate > 0) { fail("AdaGrad learningRate must be positive, got \(learningRate)", at: s) }
        if !(lrDecay >= 0) { fail("AdaGrad lrDecay must be non-negative, got \(lrDecay)", at: s) }
        if !(eps > 0) { fail("AdaGrad eps must be positive, got \(eps)", at: s) }
        if !(initialAccumulatorValue >= 0) {
            fail("AdaGrad initialAccumulatorValue must be non-negative, got \(initialAccumulatorValue)", at: s)
        }
        checkWeightDecay("AdaGrad", weightDecay, s)
        spec = .adagrad(learningRate: learningRate, lrDecay: lrDecay, weightDecay: weightDecay, eps: eps,
                        initialAccumulator: initialAccumulatorValue)
    }
}

/// RMSProp, as `torch.optim.RMSprop`: v ← αv + (1−α)g²;  p ← p − lr·g/(√v + ε). `centered` divides by the
/// estimated variance √(v − ḡ²) instead (ḡ ← αḡ + (1−α)g); `momentum` > 0 keeps b ← μb + g/(√v + ε) and
/// steps p ← p − lr·b.
public struct RMSProp: Optimizer {
    public let spec: OptimizerSpec
    public init(learningRate: Double = 0.01, alpha: Double = 0.99, eps: Double = 1e-8, weightDecay: Double = 0,
                momentum: Double = 0, centered: Bool = false,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        let s = site(file, line, column)
        if !(learningRate > 0) { fail("RMSProp learningRate must be positive, got \(learningRate)", at: s) }
        if !(alpha >= 0 && alpha < 1) { fail("RMSProp alpha must be in [0, 1), got \(alpha)", at: s) }
        if !(eps > 0) { fail("RMSProp eps must be positive, got \(eps)", at: s) }
        if !(momentum >= 0 && momentum < 1) { fail("RMSProp momentum must be in [0, 1), got \(momentum)", at: s) }
        checkWeightDecay("RMSProp", weightDecay, s)
        spec = .rmsprop(learningRate: learningRate, alpha: alpha, eps: eps, weightDecay: weightDecay,
                        momentum: momentum, centered: centered)
    }
}

private func checkAdam(_ name: String, _ lr: Double, _ betas: (Double, Double), _ eps: Double, _ s: SourceSite) {
    if !(lr > 0) { fail("\(name) learningRate must be positive, got \(lr)", at: s) }
    for (n, b) in [("betas.0", betas.0), ("betas.1", betas.1)] where !(b >= 0 && b < 1) {
        fail("\(name) \(n) must be in [0, 1), got \(b)", at: s)
    }
    if !(eps > 0) { fail("\(name) eps must be positive, got \(eps)", at: s) }
}

private func checkWeightDecay(_ name: String, _ wd: Double, _ s: SourceSite) {
    if !(wd >= 0) { fail("\(name) weightDecay must be non-negative, got \(wd)", at: s) }
}

/// Full-batch L-BFGS, as `torch.optim.LBFGS`: each optimizer step (one epoch) runs up to `maxIter` iterations
/// over the whole training set. The direction comes from the two-loop recursion over the last `historySize`
/// pairs (s, y) of steps and gradient changes; the first iteration of a run steps min(1, 1/‖g‖₁)·lr along −g.
/// `lineSearch: .strongWolfe` chooses each step length by torch's strong-Wolfe search (c₁ = 1e-4, c₂ = 0.9,
/// cubic interpolation, at most 25 evaluations), `.none` takes the fixed step lr. A step stops early when
/// max |g| ≤ `tolGrad`, when the loss or the step changes by less than `tolChange`, or after `maxEval` loss
/// evaluations (default maxIter·5/4, as torch). L-BFGS takes no schedule and no weight decay (add an L2
/// `penalty:` to the loss instead).
///
/// ```swift
/// train(model, input: 6, loss: .mse, optimizer: LBFGS(historySize: 10, lineSearch: .strongWolfe), epochs: 5)
/// ```
public struct LBFGS: Optimizer {
    /// How each iteration's step length is chosen.
    public enum LineSearch: Sendable {
        /// A fixed step of lr along the direction (torch's `line_search_fn=None`).
        case none
        /// torch's `line_search_fn="strong_wolfe"`.
        case strongWolfe
    }
    public let spec: OptimizerSpec
    public init(learningRate: Double = 1, maxIter: Int = 20, maxEval: Int? = nil, historySize: Int = 100,
                tolGrad: Double = 1e-7, tolChange: Double = 1e-9, lineSearch: LineSearch = .none,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        let s = site(file, line, column)
        if !(learningRate > 0) { fail("LBFGS learningRate must be positive, got \(learningRate)", at: s) }
        if maxIter < 1 { fail("LBFGS maxIter must be at least 1, got \(maxIter)", at: s) }
        if let maxEval, maxEval < 1 { fail("LBFGS maxEval must be at least 1, got \(maxEval)", at: s) }
        if historySize < 1 { fail("LBFGS historySize must be at least 1, got \(historySize)", at: s) }
        if !(tolGrad >= 0) { fail("LBFGS tolGrad must be non-negative, got \(tolGrad)", at: s) }
        if !(tolChange >= 0) { fail("LBFGS tolChange must be non-negative, got \(tolChange)", at: s) }
        spec = .lbfgs(learningRate: learningRate, maxIter: maxIter, maxEval: maxEval, historySize: historySize,
                      tolGrad: tolGrad, tolChange: tolChange, strongWolfe: lineSearch == .strongWolfe)
    }
}
