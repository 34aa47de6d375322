import Foundation

/// Elementwise functions of one operand.
public enum UnaryFn: String, Codable, Hashable, Sendable, CaseIterable {
    case neg, relu, sigmoid, tanh, exp, log, sqrt, square, reciprocal
    /// 1 where x > 0, else 0: the derivative of relu.
    case step
    /// Cosine and sine (schedules); floor, the largest integer ≤ x (no gradient: zero almost everywhere).
    case cos, sin, floor
    /// |x|; sign(x) in {−1, 0, 1}, the derivative of abs (no gradient of its own, like step); the Gauss error
    /// function; softplus log(1 + eˣ), evaluated as max(x, 0) + log(1 + e^(−|x|)) so that it never overflows.
    case abs, sign, erf, softplus
}

/// Elementwise functions of two operands, with scalar and bias broadcasting (see `Op.resultType`).
public enum BinaryFn: String, Codable, Hashable, Sendable, CaseIterable {
    case add, sub, mul, div, pow
    /// The smaller and the larger operand; the gradient goes to the one chosen (to b on a tie).
    case min, max
}

/// The closed set of IR operations. What passes need to know about an op is data in `OpInfo`, not a
/// `switch` repeated in every pass.
public enum Op: Hashable, Codable, Sendable {
    // Sources
    case input(String)            // batched data bound by the runtime: "x", "y"
    case param(ParamID)           // a parameter in the params arena
    case state(StateID)           // one slot of a parameter's optimizer state, in the state arena
    case hyper(HyperID)           // a run-time scalar hyperparameter (--lr, --momentum, …)
    case stepCount                // the 1-based index of the update being taken
    case epochCount               // the 0-based index of the epoch the update belongs to
    case lrOverride               // the runtime's learning rate in place of the schedule's (--swa-lr, --snapshots); 0: none
    case stepsPerEpoch            // the steps of an epoch, ⌈N/B⌉ for the run's data and batch (schedules in epochs)
    case batchSize                // n, the run-time batch size
    case constant(Double)         // a scalar literal
    // Elementwise
    case unary(UnaryFn)
    case binary(BinaryFn)
    case broadcast                // a scalar or an unbatched tensor repeated to the node's (batched) shape
    // Contraction: op(A) @ op(B) on rank-2 operands
    case matmul(transA: Bool, transB: Bool)
    // Reductions
    case sumBatch                 // (n, d…) → (d…)
    case sumAll                   // anything → ()
    case sumRow                   // (n, k) → (n): the sum of each sample's row
    // Layout along the feature dimension of (n, k)
    case concat                   // (a (n,p), b (n,q)) → (n,p+q)
    case slice(start: Int, count: Int)   // (n,k) → (n,count): columns start..<start+count
    case embed(start: Int, total: Int)   // (n,c) → (n,total): columns start..<start+c, zeros elsewhere
    case groupMax(Int)            // (n, m·k) → (n, m): the max of each group of k consecutive features (Maxout)
    case groupMaxGrad(Int)        // (g (n,m), z (n,m·k)) → (n,m·k): g at each group's first maximum, else 0
    // Row-wise over the last dimension of (n, k)
    case logSoftmax
    case logSoftmaxGrad           // (g, logp) → g − softmax(logp)·Σ_row g
    case nll                      // (logp (n,k), labels (n)) → Σ_i −logp[i, y_i]
    case nllGrad                  // (g (), labels (n), like logp) → −g at [i, y_i], else 0
    case softmaxCrossEntropy      // fused nll(logSoftmax(z), y)
    case softmaxCrossEntropyGrad  // fused (g, z, y) → g·(softmax(z) − onehot(y))
    case gatherLabel              // (z (n,k), labels (n)) → (n,k): z[i, y_i] repeated along row i
    case gatherLabelGrad          // (g (n,k), labels (n)) → (n,k): Σ_j g[i, j] at [i, y_i], else 0
    // Effects: the optimizer writes a new value into a parameter or state buffer
    case assign(BufferID)
    // Train/eval behaviour: the pipeline specializes the forward graph per execution mode before differentiating
    case byMode(ModeSwitch)       // (whenOn, whenOff): whenOn where the switch is on in the program's mode
    case dropoutMask              // (p ()) → a value per element: 1/(1−p) with probability 1−p, else 0; random
    // Any rank (NCHW at every boundary)
    case reshape                  // x → the declared type: the same elements in the same row-major order
    case sumTo                    // x → the declared type, a shape that broadcasts to x's: the sum over the broadcast axes
    // Windows over (n, C, H, W): convolution and pooling, with their backward ops, so that backward stays IR
    case conv2d(Conv2dAttrs)              // (x (n,C,H,W), w (K,C/g,kh,kw)[, b (K)]) → (n,K,OH,OW)
    case conv2dGradInput(Conv2dAttrs)     // (g (n,K,OH,OW), w) → the declared (n,C,H,W)
    case conv2dGradWeight(Conv2dAttrs)    // (g (n,K,OH,OW), x (n,C,H,W)) → the declared (K,C/g,kh,kw)
    case conv2dGradBias                   // g (n,K,OH,OW) → (K): the sum over n, OH and OW
    case maxPool2d(Pool2dAttrs)           // x (n,C,H,W) → (n,C,OH,OW), padding counting as −∞
    case maxPool2dGrad(Pool2dAttrs)       // (g (n,C,OH,OW), x) → x's type: g at each window's first maximum
    case avgPool2d(Pool2dAttrs)           // x (n,C,H,W) → (n,C,OH,OW), padding counted as zeros (count_include_pad)
    case avgPool2dGrad(Pool2dAttrs)       // g (n,C,OH,OW) → the declared (n,C,H,W)
    // Stochastic layers (#19): DropConnect and StochasticDepth are `dropoutMask`s of other shapes
    case uniformNoise                     // () → the declared type, each element U[0, 1); random
    case fractionalMaxPool2d(FractionalPool2dAttrs)      // (x (n,C,H,W), u (n,C,2)) → (n,C,OH,OW), Graham's regions
    case fractionalMaxPool2dGrad(FractionalPool2dAttrs)  // (g (n,C,OH,OW), x, u) → x's type: g added at each region's first maximum
}

/// A fractional max pooling (Graham 2014, as PyTorch's `nn.FractionalMaxPool2d`): a `kernel` window at each of
/// `output` pseudo-random offsets per axis. The offsets of sample b, channel c come from u[b, c, 0] (width) and
/// u[b, c, 1] (height): with α = (in − k)/(out − 1), offset i < out − 1 is ⌊(i + u)·α⌋ − ⌊u·α⌋ and the last is
/// in − k (PyTorch's `generate_intervals`, evaluated in float64).
public struct FractionalPool2dAttrs: Hashable, Codable, Sendable, CustomStringConvertible {
    public var kernel: [Int]
    public var output: [Int]

    public init(kernel: [Int], output: [Int]) {
        self.kernel = kernel
        self.output = output
    }

    /// The window's first row (axis 0) or column (axis 1) at output index `i` of an input of size `size`.
    public func start(_ i: Int, size: Int, u: Double, axis a: Int) -> Int {
        let out = output[a], k = kernel[a]
        if i == out - 1 { return size - k }
        let alpha = Double(size - k) / Double(out - 1)
        return Int(((Double(i) + u) * alpha).rounded(.down)) - Int((u * alpha).rounded(.down))
    }

    public var description: String { "\(kernel[0])x\(kernel[1]) to \(output[0])x\(output[1])" }
}

/// A 2-d convolution's geometry besides its shapes, as PyTorch's `nn.Conv2d` arguments: (height, width) pairs.
public struct Conv2dAttrs: Hashable, Codable, Sendable, CustomStringConvertible {
    public var stride: [Int]
    public var padding: [Int]
    public var dilation: [Int]
    public var groups: Int

    public init(stride: [Int] = [1, 1], padding: [Int] = [0, 0], dilation: [Int] = [1, 1], groups: Int = 1) {
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
    }

    /// The output size along one axis of an input of size `size` and a kernel of size `k` (PyTorch's floor mode).
    public func outputSize(_ size: Int, kernel k: Int, axis a: Int) -> Int {
        (size + 2 * padding[a] - dilation[a] * (k - 1) - 1) / stride[a] + 1
    }

    public var description: String {
        var parts = ["stride \(stride[0])x\(stride[1])"]
        if padding != [0, 0] { parts.append("pad \(padding[0])x\(padding[1])") }
        if dilation != [1, 1] { parts.append("dilation \(dilation[0])x\(dilation[1])") }
        if groups != 1 { parts.append("groups \(groups)") }
        return parts.joined(separator: ", ")
    }
}

/// A 2-d pooling window, as PyTorch's `nn.MaxPool2d`/`nn.AvgPool2d` arguments: (height, width) pairs.
public struct Pool2dAttrs: Hashable, Codable, Sendable, CustomStringConvertible {
    public var kernel: [Int]
    public var stride: [Int]
    public var padding: [Int]
    /// Average pooling divides by the whole window (true, PyTorch's default) or by its part inside the image.
    public var countIncludePad: Bool

    public init(kernel: [Int], stride: [Int]? = nil, padding: [Int] = [0, 0], countIncludePad: Bool = true) {
        self.kernel = kernel
        self.stride = stride ?? kernel
        self.padding = padding
        self.countIncludePad = countIncludePad
    }

    public func outputSize(_ size: Int, axis a: Int) -> Int { (size + 2 * padding[a] - kernel[a]) / stride[a] + 1 }

    public var description: String {
        var parts = ["\(kernel[0])x\(kernel[1])"]
        if stride != kernel { parts.append("stride \(stride[0])x\(stride[1])") }
        if padding != [0, 0] { parts.append("pad \(padding[0])x\(padding[1])") }
        if !countIncludePad { parts.append("exclude pad") }
        return parts.joined(separator: ", ")
    }
}

/// A behaviour that differs between training and inference. Each execution mode turns some of them on.
public enum ModeSwitch: String, Codable, Hashable, Sendable, CaseIterable {
    /// Dropout masks are drawn (train only).
    case dropout
    /// Normalization uses the batch's statistics and updates its running statistics (train; gradcheck uses the
    /// batch statistics too, so that it checks the gradient training follows).
    case batchStatistics = "batch_stats"
    /// The loss includes the penalty (train, and gradcheck, which checks the gradient training follows); the
    /// evaluation's loss is the criterion's alone, as PyTorch users compute a validation or test loss.
    case penalty
    /// Fractional max pooling draws its regions (train and eval, as PyTorch's module does in both; gradcheck
    /// fixes u = 0.5 so that the function it differentiates is deterministic).
    case poolSamples = "pool_samples"
    /// The loss includes the auxiliary heads' weighted losses (train and gradcheck); evaluation, predict and export
    /// use the main head alone, so dead-code elimination drops the auxiliary heads there.
    case auxiliary
}

/// Which program a graph is specialized for.
public enum ExecutionMode: String, Sendable, CaseIterable {
    case train, gradcheck, eval

    public func isOn(_ s: ModeSwitch) -> Bool {
        switch (self, s) {
        case (.train, _): return true
        case (.gradcheck, .batchStatistics), (.gradcheck, .penalty), (.gradcheck, .auxiliary): return true
        case (.eval, .poolSamples): return true
        default: return false
        }
    }
}

/// How an op computes, which decides what fusion and memory planning may do with it.
public enum OpKind: String, Sendable {
    case source, elementwise, contraction, reduction, rowwise, effect
    /// A window over (n, C, H, W) (convolution, pooling): its own kernel, a call into runtime/.
    case window
}

/// Properties of an op, as data.
public struct OpInfo: Sendable {
    public var kind: OpKind
    /// Output element i depends only on input element i (after broadcasting): it may overwrite a dying input.
    public var inPlaceable: Bool
    /// The operands a gradient flows to; nil means all of them (integer labels never get one).
    public var differentiable: [Int]?

    static func make(_ kind: OpKind, inPlace: Bool = false, diff: [Int]? = nil) -> OpInfo {
        OpInfo(kind: kind, inPlaceable: inPlace, differentiable: diff)
    }
}

extension Op {
    public var info: OpInfo {
        switch self {
        case .input, .param, .state, .hyper, .stepCount, .epochCount, .lrOverride, .stepsPerEpoch, .batchSize, .constant: return .make(.source)
        case .unary, .binary, .broadcast: return .make(.elementwise, inPlace: true)
        case .matmul: return .make(.contraction)
        case .sumBatch, .sumAll, .sumRow: return .make(.reduction)
        case .logSoftmax, .logSoftmaxGrad: return .make(.rowwise)
        case .concat, .slice, .embed, .groupMax: return .make(.rowwise)
        case .groupMaxGrad: return .make(.rowwise, diff: [])
        case .nll, .softmaxCrossEntropy: return .make(.rowwise, diff: [0])
        case .nllGrad, .softmaxCrossEntropyGrad: return .make(.rowwise, diff: [])
        case .gatherLabel: return .make(.rowwise, diff: [0])
        case .gatherLabelGrad: return .make(.rowwise, diff: [])
        case .assign: return .make(.effect)
        case .byMode: return .make(.elementwise)
        case .dropoutMask: return .make(.elementwise, diff: [])
        case .reshape: return .make(.elementwise)
        case .sumTo: return .make(.reduction)
        case .conv2d, .maxPool2d, .avgPool2d, .conv2dGradBias: return .make(.window)
        case .maxPool2dGrad: return .make(.window, diff: [])
        case .conv2dGradInput, .conv2dGradWeight, .avgPool2dGrad: return .make(.window, diff: [])
        case .uniformNoise: return .make(.elementwise, diff: [])
        case .fractionalMaxPool2d: return .make(.window, diff: [0])
        case .fractionalMaxPool2dGrad: return .make(.window, diff: [])
        }
    }

    /// The op draws from the trainer's random generator: each node is its own draw (never merged by CSE).
    public var isRandom: Bool { self == .dropoutMask || self == .uniformNoise }

    /// The op's name in dumps and kernel names.
    public var mnemonic: String {
        switch self {
        case .input: return "input"
        case .param: return "param"
        case .state: return "state"
        case .hyper: return "hyper"
        case .stepCount: return "step"
        case .epochCount: return "epoch"
        case .lrOverride: return "lr_override"
        case .stepsPerEpoch: return "steps_per_epoch"
        case .batchSize: return "batch_size"
        case .constant: return "const"
        case .unary(let f): return f.rawValue
        case .binary(let f): return f.rawValue
        case .broadcast: return "broadcast"
        case .matmul: return "matmul"
        case .sumBatch: return "sum_batch"
        case .sumAll: return "sum_all"
        case .sumRow: return "sum_row"
        case .concat: return "concat"
        case .slice: return "slice"
        case .embed: return "embed"
        case .groupMax: return "group_max"
        case .groupMaxGrad: return "group_max_grad"
        case .logSoftmax: return "log_softmax"
        case .logSoftmaxGrad: return "log_softmax_grad"
        case .nll: return "nll"
        case .nllGrad: return "nll_grad"
        case .softmaxCrossEntropy: return "softmax_ce"
        case .softmaxCrossEntropyGrad: return "softmax_ce_grad"
        case .gatherLabel: return "gather_label"
        case .gatherLabelGrad: return "gather_label_grad"
        case .assign: return "assign"
        case .byMode(let m): return "by_mode_\(m.rawValue)"
        case .dropoutMask: return "dropout_mask"
        case .reshape: return "reshape"
        case .sumTo: return "sum_to"
        case .conv2d: return "conv2d"
        case .conv2dGradInput: return "conv2d_grad_input"
        case .conv2dGradWeight: return "conv2d_grad_weight"
        case .conv2dGradBias: return "conv2d_grad_bias"
        case .maxPool2d: return "max_pool2d"
        case .maxPool2dGrad: return "max_pool2d_grad"
        case .avgPool2d: return "avg_pool2d"
        case .avgPool2dGrad: return "avg_pool2d_grad"
        case .uniformNoise: return "uniform_noise"
        case .fractionalMaxPool2d: return "fractional_max_pool2d"
        case .fractionalMaxPool2dGrad: return "fractional_max_pool2d_grad"
        }
    }

    /// The attributes shown after the mnemonic in dumps, e.g. `"x"` or `[Bᵀ]`; an ID as `param#3` (a graph
    /// prints names: `Graph.attributeText`).
    public var attributeText: String {
        switch self {
        case .input(let s): return " \"\(s)\""
        case .param(let p): return " \(p)"
        case .hyper(let h): return " \(h)"
        case .state(let s): return " \(s.slot.rawValue)[\(s.param)]"
        case .assign(.param(let p)): return " \(p)"
        case .assign(.state(let s)): return " \(s.slot.rawValue)[\(s.param)]"
        case .constant(let v): return " \(formatNumber(v))"
        case .slice(let s, let c): return "[\(s)..<\(s + c)]"
        case .embed(let s, let t): return "[\(s) of \(t)]"
        case .groupMax(let k), .groupMaxGrad(let k): return "[\(k)]"
        case .matmul(let ta, let tb):
            let t = [ta ? "Aᵀ" : nil, tb ? "Bᵀ" : nil].compactMap { $0 }
            return t.isEmpty ? "" : "[" + t.joined(separator: ",") + "]"
        case .conv2d(let a), .conv2dGradInput(let a), .conv2dGradWeight(let a): return "[\(a)]"
        case .maxPool2d(let a), .maxPool2dGrad(let a), .avgPool2d(let a), .avgPool2dGrad(let a): return "[\(a)]"
        case .fractionalMaxPool2d(let a), .fractionalMaxPool2dGrad(let a): return "[\(a)]"
        default: return ""
        }
    }
}

/// Prints a Double the same way on every run and platform: integers without a fraction, others with up to 9
/// significant digits (enough for a float32 to round-trip).
public func formatNumber(_ v: Double) -> String {
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    var s = String(format: "%.9g", v)
    if s.contains("e") { s = s.replacingOccurrences(of: "e-0", with: "e-").replacingOccurrences(of: "e+0", with: "e+") }
    return s
}
