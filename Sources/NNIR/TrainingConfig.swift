/// The optimizer a model trains with. Its numbers are defaults: each becomes a run-time hyperparameter.
public enum OptimizerSpec: Codable, Hashable, Sendable {
    /// PyTorch's SGD: v ← μv + g; p ← p − lr·v, or p ← p − lr·(g + μv) with Nesterov.
    case sgd(learningRate: Double, momentum: Double, nesterov: Bool)
    /// Adam with bias correction, as in PyTorch.
    case adam(learningRate: Double, beta1: Double, beta2: Double, eps: Double)

    public var name: String {
        switch self {
        case .sgd(_, let m, let n): return n ? "sgd_nesterov" : (m == 0 ? "sgd" : "sgd_momentum")
        case .adam: return "adam"
        }
    }
    public var learningRate: Double {
        switch self {
        case .sgd(let lr, _, _), .adam(let lr, _, _, _): return lr
        }
    }
}

/// How the learning rate changes over training. The schedule is lowered to graph code that computes the rate
/// from the step counter and hyperparameters; new schedules are new cases here and in the lowering.
public enum ScheduleSpec: Codable, Hashable, Sendable {
    case constant
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

    public init(inputDim: Int, outputDim: Int, target: TargetKind, batchSize: Int, maxBatch: Int, epochs: Int,
                seed: UInt64, optimizer: OptimizerSpec, schedule: ScheduleSpec = .constant) {
        self.inputDim = inputDim
        self.outputDim = outputDim
        self.target = target
        self.batchSize = batchSize
        self.maxBatch = maxBatch
        self.epochs = epochs
        self.seed = seed
        self.optimizer = optimizer
        self.schedule = schedule
    }
}
