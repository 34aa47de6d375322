/// The optimizer a model trains with. Its numbers are defaults: each becomes a run-time hyperparameter.
/// Weight decay is L2 added to the gradient (g ← g + wd·p, torch's `weight_decay`) except for AdamW, which
/// decays the parameter itself (p ← p − lr·wd·p) before its Adam step.
public enum OptimizerSpec: Codable, Hashable, Sendable {
    /// PyTorch's SGD: v ← μv + g; p ← p − lr·v, or p ← p − lr·(g + μv) with Nesterov. With `velocity`, the
    /// lectures' form: v ← μv − lr·g; p ← p + v (Nesterov: p ← p + μv − lr·g).
    case sgd(learningRate: Double, momentum: Double, nesterov: Bool, weightDecay: Double = 0, velocity: Bool = false)
    /// Adam with bias correction, as in PyTorch; `decoupled` is AdamW; `amsgrad` divides by the running maximum
    /// of v (torch's `amsgrad=True`).
    case adam(learningRate: Double, beta1: Double, beta2: Double, eps: Double, weightDecay: Double = 0,
              decoupled: Bool = false, amsgrad: Bool = false)
    /// torch.optim.Adagrad: s ← s + g² (s starting at `initialAccumulator`); p ← p − lr/(1 + (t−1)·lrDecay) · g/(√s + ε).
    case adagrad(learningRate: Double, lrDecay: Double, weightDecay: Double, eps: Double, initialAccumulator: Double = 0)
    /// torch.optim.RMSprop: v ← αv + (1−α)g²; p ← p − lr·g/(√v + ε), optionally centered and with momentum.
    case rmsprop(learningRate: Double, alpha: Double, eps: Double, weightDecay: Double, momentum: Double,
                 centered: Bool)
    /// torch.optim.LBFGS, full batch: each step runs up to `maxIter` iterations of the two-loop recursion over the
    /// last `historySize` curvature pairs, with a strong-Wolfe line search or a fixed step lr. The runtime owns the
    /// update (runtime/lbfgs.c); the graph has none. `maxEval` nil is torch's maxIter·5/4.
    case lbfgs(learningRate: Double, maxIter: Int, maxEval: Int?, historySize: Int, tolGrad: Double, tolChange: Double,
               strongWolfe: Bool)

    public var name: String {
        switch self {
        case .sgd(_, let m, let n, _, let velocity):
            let base = n ? "sgd_nesterov" : (m == 0 ? "sgd" : "sgd_momentum")
            return velocity && m > 0 ? base + "_velocity" : base
        case .adam(_, _, _, _, _, let decoupled, let amsgrad): return (decoupled ? "adamw" : "adam") + (amsgrad ? "_amsgrad" : "")
        case .adagrad: return "adagrad"
        case .rmsprop(_, _, _, _, let m, let c): return "rmsprop" + (c ? "_centered" : "") + (m > 0 ? "_momentum" : "")
        case .lbfgs(_, _, _, _, _, _, let strongWolfe): return strongWolfe ? "lbfgs_strong_wolfe" : "lbfgs"
        }
    }
    public var learningRate: Double {
        switch self {
        case .sgd(let lr, _, _, _, _), .adam(let lr, _, _, _, _, _, _), .adagrad(let lr, _, _, _, _),
             .rmsprop(let lr, _, _, _, _, _), .lbfgs(let lr, _, _, _, _, _, _): return lr
        }
    }
    /// L-BFGS: the runtime runs the update over the whole training set, so the graph's train step computes the
    /// loss and gradients only.
    public var isFullBatch: Bool { if case .lbfgs = self { true } else { false } }
    public var weightDecay: Double {
        switch self {
        case .sgd(_, _, _, let wd, _), .adam(_, _, _, _, let wd, _, _), .adagrad(_, _, let wd, _, _),
             .rmsprop(_, _, _, let wd, _, _): return wd
        case .lbfgs: return 0
        }
    }
}

/// How the learning rate changes over training, as a function η(t) of the schedule's counter t: the 0-based
/// index of the step (stepping per step) or of the epoch (per epoch), as PyTorch's `scheduler.step()` counts.
/// η₀ is the optimizer's learning rate. Every number is a run-time hyperparameter named as in PyTorch
/// (`--gamma`, `--t-max`, …). The lowering is `GraphEditor.learningRate` in NNCompiler.
public indirect enum ScheduleSpec: Codable, Hashable, Sendable {
    case constant
    /// η₀·γ^⌊t/k⌋ (StepLR).
    case stepDecay(every: Int, gamma: Double)
    /// η₀·γ^(number of milestones ≤ t) (MultiStepLR).
    case multiStep(milestones: [Int], gamma: Double)
    /// η₀·γ^t (ExponentialLR).
    case exponential(gamma: Double)
    /// η₀·e^(−kt).
    case exponentialDecay(rate: Double)
    /// η₀·½^⌊t/k⌋.
    case halving(every: Int)
    /// η₀/(1 + kt).
    case inverseTime(rate: Double)
    /// η₀/√(t + 1).
    case inverseSqrt
    /// η₀·(1 − min(t, T)/T)^p (PolynomialLR).
    case polynomial(totalIters: Int, power: Double)
    /// η₀·max(0, 1 − t/T).
    case linear(totalIters: Int)
    /// η_min + (η₀ − η_min)·½(1 + cos(π·min(t, T)/T)) (CosineAnnealingLR, held at η_min after T).
    case cosine(tMax: Int, etaMin: Double)
    /// CyclicLR 'triangular' between η₀ and maxLR, half-cycle stepSizeUp.
    case cyclic(maxLR: Double, stepSizeUp: Int)
    /// CosineAnnealingWarmRestarts: cosine from η₀ to η_min over T_0, T_0·T_mult, … with restarts.
    case warmRestarts(t0: Int, tMult: Double, etaMin: Double)
    /// OneCycleLR with cosine annealing; η₀ is max_lr.
    case oneCycle(totalSteps: Int, pctStart: Double, divFactor: Double, finalDivFactor: Double)
    /// The factor min(1, (t+1)/W) times `then` evaluated at max(t − W, 0).
    case warmup(steps: Int, then: ScheduleSpec)
    /// The wrapped schedule with its own lengths (k, T, milestones, W; not a warmup's `then`) counted in epochs:
    /// per step, each is its value times the run's steps per epoch, worked out from the data size and batch at
    /// run time; its hyperparameters are named with `_epochs` (`t_max_epochs`, `warmup_epochs`).
    case epochs(ScheduleSpec)

    public var name: String {
        switch self {
        case .constant: return "constant"
        case .stepDecay: return "step"
        case .multiStep: return "multistep"
        case .exponential: return "exponential"
        case .exponentialDecay: return "exponential_decay"
        case .halving: return "halving"
        case .inverseTime: return "inverse_time"
        case .inverseSqrt: return "inverse_sqrt"
        case .polynomial: return "polynomial"
        case .linear: return "linear"
        case .cosine: return "cosine"
        case .cyclic: return "cyclic"
        case .warmRestarts: return "warm_restarts"
        case .oneCycle: return "one_cycle"
        case .warmup(_, let then): return "warmup+" + then.name
        case .epochs(let s): return s.name + "@epochs"
        }
    }
}

/// What the schedule's counter t counts.
public enum ScheduleInterval: String, Codable, Hashable, Sendable {
    /// t = step − 1: a new rate every step.
    case step
    /// t = epoch (0-based): one rate for a whole epoch.
    case epoch
}

/// What the targets are.
public enum TargetKind: String, Codable, Hashable, Sendable {
    /// Integer class labels, one per sample; the model's output is logits.
    case classes
    /// Float targets with the same shape as the model's output.
    case dense
}

/// Everything besides the network that a training run needs, with the DSL's defaults.
public struct TrainingConfig: Codable, Hashable, Sendable {
    public var inputDim: Int
    public var outputDim: Int
    public var target: TargetKind
    public var batchSize: Int
    public var maxBatch: Int
    public var epochs: Int
    public var seed: UInt64
    public var optimizer: OptimizerSpec
    public var schedule: ScheduleSpec
    public var scheduleInterval: ScheduleInterval

    public init(inputDim: Int, outputDim: Int, target: TargetKind, batchSize: Int, maxBatch: Int, epochs: Int,
                seed: UInt64, optimizer: OptimizerSpec, schedule: ScheduleSpec = .constant,
                scheduleInterval: ScheduleInterval = .step) {
        self.inputDim = inputDim
        self.outputDim = outputDim
        self.target = target
        self.batchSize = batchSize
        self.maxBatch = maxBatch
        self.epochs = epochs
        self.seed = seed
        self.optimizer = optimizer
        self.schedule = schedule
        self.scheduleInterval = scheduleInterval
    }
}
