import Foundation

/// Elementwise functions of one operand.
public enum UnaryFn: String, Codable, Hashable, Sendable, CaseIterable {
    case neg, relu, sigmoid, tanh, exp, log, sqrt, square, reciprocal
    /// 1 where x > 0, else 0: the derivative of relu.
    case step
}

/// Elementwise functions of two operands, with scalar and bias broadcasting (see `Op.resultType`).
public enum BinaryFn: String, Codable, Hashable, Sendable, CaseIterable {
    case add, sub, mul, div, pow
}

/// The closed set of IR operations. What passes need to know about an op is data in `OpInfo`, not a
/// `switch` repeated in every pass.
public enum Op: Hashable, Codable, Sendable {
    // Sources
    case input(String)            // batched data bound by the runtime: "x", "y"
    case param(String)            // a parameter in the params arena
    case state(String)            // optimizer state in the state arena, "<slot>.<param>"
    case hyper(String)            // a run-time scalar hyperparameter (--lr, --momentum, …)
    case stepCount                // the 1-based index of the update being taken
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
    // Row-wise over the last dimension of (n, k)
    case logSoftmax
    case logSoftmaxGrad           // (g, logp) → g − softmax(logp)·Σ_row g
    case nll                      // (logp (n,k), labels (n)) → Σ_i −logp[i, y_i]
    case nllGrad                  // (g (), labels (n), like logp) → −g at [i, y_i], else 0
    case softmaxCrossEntropy      // fused nll(logSoftmax(z), y)
    case softmaxCrossEntropyGrad  // fused (g, z, y) → g·(softmax(z) − onehot(y))
    // Effects: the optimizer writes a new value into a parameter or state buffer
    case assign(String)
}

/// How an op computes, which decides what fusion and memory planning may do with it.
public enum OpKind: String, Sendable {
    case source, elementwise, contraction, reduction, rowwise, effect
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
        case .input, .param, .state, .hyper, .stepCount, .batchSize, .constant: return .make(.source)
        case .unary, .binary, .broadcast: return .make(.elementwise, inPlace: true)
        case .matmul: return .make(.contraction)
        case .sumBatch, .sumAll: return .make(.reduction)
        case .logSoftmax, .logSoftmaxGrad: return .make(.rowwise)
        case .nll, .softmaxCrossEntropy: return .make(.rowwise, diff: [0])
        case .nllGrad, .softmaxCrossEntropyGrad: return .make(.rowwise, diff: [])
        case .assign: return .make(.effect)
        }
    }

    /// The op's name in dumps and kernel names.
    public var mnemonic: String {
        switch self {
        case .input: return "input"
        case .param: return "param"
        case .state: return "state"
        case .hyper: return "hyper"
        case .stepCount: return "step"
        case .batchSize: return "batch_size"
        case .constant: return "const"
        case .unary(let f): return f.rawValue
        case .binary(let f): return f.rawValue
        case .broadcast: return "broadcast"
        case .matmul: return "matmul"
        case .sumBatch: return "sum_batch"
        case .sumAll: return "sum_all"
        case .logSoftmax: return "log_softmax"
        case .logSoftmaxGrad: return "log_softmax_grad"
        case .nll: return "nll"
        case .nllGrad: return "nll_grad"
        case .softmaxCrossEntropy: return "softmax_ce"
        case .softmaxCrossEntropyGrad: return "softmax_ce_grad"
        case .assign: return "assign"
        }
    }

    /// The attributes shown after the mnemonic in dumps, e.g. `"x"` or `[Bᵀ]`.
    public var attributeText: String {
        switch self {
        case .input(let s), .param(let s), .state(let s), .hyper(let s), .assign(let s): return " \"\(s)\""
        case .constant(let v): return " \(formatNumber(v))"
        case .matmul(let ta, let tb):
            let t = [ta ? "Aᵀ" : nil, tb ? "Bᵀ" : nil].compactMap { $0 }
            return t.isEmpty ? "" : "[" + t.joined(separator: ",") + "]"
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
