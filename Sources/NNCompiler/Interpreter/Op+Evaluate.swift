import Foundation
import NNIR

/// The float64 semantics of every computing op, as documented on `Op`. Sources are read by
/// `Graph.evaluate`, which knows the bindings.
extension Op {
    func apply(_ x: [Tensor64], resultShape full: [Int]) throws -> Tensor64 {
        switch self {
        case .input, .param, .state, .hyper, .stepCount, .epochCount, .lrOverride, .stepsPerEpoch, .batchSize, .constant:
            preconditionFailure("\(mnemonic) is a source; Graph.evaluate reads it")
        case .byMode:
            throw Diagnostic.unsupported("\(mnemonic): specialize the graph for an execution mode first")
        case .dropoutMask:
            throw Diagnostic.unsupported("dropout_mask draws random numbers; evaluate the eval-mode graph")
        case .uniformNoise:
            throw Diagnostic.unsupported("uniform_noise draws random numbers; give its values to evaluate (draws:)")
        case .fractionalMaxPool2d, .fractionalMaxPool2dGrad:
            return fractionalPool(x, full)
        case .unary(let f):
            return Tensor64(shape: full, data: x[0].data.map(f.apply))
        case .binary(let f):
            return Tensor64(shape: full, data: (0..<full.reduce(1, *)).map {
                f.apply(x[0].data[broadcastIndex($0, x[0], full)], x[1].data[broadcastIndex($0, x[1], full)])
            })
        case .broadcast:
            return Tensor64(shape: full, data: (0..<full.reduce(1, *)).map { x[0].data[broadcastIndex($0, x[0], full)] })
        case .reshape:
            return Tensor64(shape: full, data: x[0].data)
        case .sumTo:
            var out = [Double](repeating: 0, count: full.reduce(1, *))
            let target = Tensor64(shape: full, data: out)
            for (i, v) in x[0].data.enumerated() { out[broadcastIndex(i, target, x[0].shape)] += v }
            return Tensor64(shape: full, data: out)
        case .conv2d, .conv2dGradInput, .conv2dGradWeight, .conv2dGradBias,
             .maxPool2d, .maxPool2dGrad, .avgPool2d, .avgPool2dGrad:
            return window(x, full)
        case .matmul(let ta, let tb):
            return contract(x[0], x[1], ta, tb, full)
        case .sumBatch:
            let k = full.reduce(1, *)
            var out = [Double](repeating: 0, count: k)
            for (i, v) in x[0].data.enumerated() { out[i % k] += v }
            return Tensor64(shape: full, data: out)
        case .sumAll:
            return .scalar(x[0].data.reduce(0, +))
        case .concat:
            return Tensor64(shape: full, data: zip(rows(x[0]), rows(x[1])).flatMap { $0 + $1 })
        case .slice(let s, let c):
            return Tensor64(shape: full, data: rows(x[0]).flatMap { $0[s..<(s + c)] })
        case .embed(let s, let total):
            return Tensor64(shape: full, data: rows(x[0]).flatMap { r in
                Array(repeating: 0, count: s) + r + Array(repeating: 0, count: total - s - r.count)
            })
        case .groupMax(let k):
            return Tensor64(shape: full, data: rows(x[0]).flatMap { r in
                stride(from: 0, to: r.count, by: k).map { r[$0..<($0 + k)].max()! }
            })
        case .groupMaxGrad(let k):   // the gradient goes to the first maximum of each group
            return Tensor64(shape: full, data: zip(rows(x[0]), rows(x[1])).flatMap { g, z in
                var out = [Double](repeating: 0, count: z.count)
                for (o, start) in stride(from: 0, to: z.count, by: k).enumerated() {
                    let group = z[start..<(start + k)]
                    out[group.firstIndex(of: group.max()!)!] = g[o]
                }
                return out
            })
        case .sumRow:
            return Tensor64(shape: full, data: rows(x[0]).map { $0.reduce(0, +) })
        case .logSoftmax:
            return Tensor64(shape: full, data: rows(x[0]).flatMap(logSoftmaxRow))
        case .logSoftmaxGrad:   // g − softmax · Σ_row g, with softmax = exp(logp)
            return Tensor64(shape: full, data: zip(rows(x[0]), rows(x[1])).flatMap { g, logp in
                let s = g.reduce(0, +)
                return zip(g, logp).map { $0 - Foundation.exp($1) * s }
            })
        case .nll:              // Σ_i −logp[i, y_i]
            let labels = try classes(x[1], k: x[0].shape[1])
            return .scalar(zip(rows(x[0]), labels).reduce(0) { $0 - $1.0[$1.1] })
        case .nllGrad:          // −g at [i, y_i], else 0
            let k = full[1]
            var out = [Double](repeating: 0, count: full.reduce(1, *))
            for (i, y) in try classes(x[1], k: k).enumerated() { out[i * k + y] = -x[0].scalar }
            return Tensor64(shape: full, data: out)
        case .softmaxCrossEntropy:   // Σ_i −log_softmax(z)[i, y_i]
            let labels = try classes(x[1], k: x[0].shape[1])
            return .scalar(zip(rows(x[0]), labels).reduce(0) { $0 - logSoftmaxRow($1.0)[$1.1] })
        case .softmaxCrossEntropyGrad:   // g · (softmax(z) − onehot(y))
            let g = x[0].scalar
            let labels = try classes(x[2], k: x[1].shape[1])
            var out: [Double] = []
            for (z, y) in zip(rows(x[1]), labels) {
                for (j, lp) in logSoftmaxRow(z).enumerated() { out.append(g * (Foundation.exp(lp) - (j == y ? 1 : 0))) }
            }
            return Tensor64(shape: full, data: out)
        case .gatherLabel:      // z[i, y_i] along row i
            let k = full[1]
            let labels = try classes(x[1], k: k)
            return Tensor64(shape: full, data: zip(rows(x[0]), labels).flatMap { z, y in Array(repeating: z[y], count: k) })
        case .gatherLabelGrad:  // Σ_j g[i, j] at [i, y_i], else 0
            let k = full[1]
            var out = [Double](repeating: 0, count: full.reduce(1, *))
            for (i, (g, y)) in zip(rows(x[0]), try classes(x[1], k: k)).enumerated() { out[i * k + y] = g.reduce(0, +) }
            return Tensor64(shape: full, data: out)
        case .assign:
            return x[0]
        }
    }
}

extension UnaryFn {
    func apply(_ x: Double) -> Double {
        switch self {
        case .neg: return -x
        case .relu: return max(x, 0)
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .tanh: return Foundation.tanh(x)
        case .exp: return Foundation.exp(x)
        case .log: return Foundation.log(x)
        case .sqrt: return x.squareRoot()
        case .square: return x * x
        case .reciprocal: return 1 / x
        case .step: return x > 0 ? 1 : 0
        case .cos: return Foundation.cos(x)
        case .sin: return Foundation.sin(x)
        case .floor: return x.rounded(.down)
        case .abs: return Swift.abs(x)
        case .sign: return x > 0 ? 1 : (x < 0 ? -1 : 0)
        case .erf: return Foundation.erf(x)
        case .softplus: return max(x, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x)))
        }
    }
}

extension BinaryFn {
    /// The function on float64 values: the reference semantics, also used for constant folding.
    func apply(_ a: Double, _ b: Double) -> Double {
        switch self {
        case .add: return a + b
        case .sub: return a - b
        case .mul: return a * b
        case .div: return a / b
        case .pow: return Foundation.pow(a, b)
        case .min: return Swift.min(a, b)
        case .max: return Swift.max(a, b)
        }
    }
}

/// The element of operand `t` that element `i` of a result of shape `full` reads under `Shape.broadcast`
/// (NumPy's right-aligned rule; a per-sample value is expanded by `Graph.evaluate` before it gets here).
func broadcastIndex(_ i: Int, _ t: Tensor64, _ full: [Int]) -> Int {
    if t.count == 1 { return 0 }
    if t.shape == full { return i }
    var rest = i, index = 0, step = 1
    for a in stride(from: full.count - 1, through: 0, by: -1) {
        let coord = rest % full[a]
        rest /= full[a]
        let ta = a - (full.count - t.shape.count)
        guard ta >= 0 else { break }
        if t.shape[ta] != 1 { index += coord * step }
        step *= t.shape[ta]
    }
    return index
}

/// op(A) @ op(B) on the full 2-D shapes; a batched operand has the batch as its row count.
private func contract(_ a: Tensor64, _ b: Tensor64, _ ta: Bool, _ tb: Bool, _ full: [Int]) -> Tensor64 {
    let (r, m) = (full[0], full[1])
    let k = ta ? a.shape[0] : a.shape[1]
    // Element (i, p) of op(A), and (p, j) of op(B), in row-major storage.
    func at(_ i: Int, _ p: Int) -> Double { ta ? a.data[p * a.shape[1] + i] : a.data[i * a.shape[1] + p] }
    func bt(_ p: Int, _ j: Int) -> Double { tb ? b.data[j * b.shape[1] + p] : b.data[p * b.shape[1] + j] }
    var out = [Double](repeating: 0, count: r * m)
    for i in 0..<r {
        for j in 0..<m {
            var s = 0.0
            for p in 0..<k { s += at(i, p) * bt(p, j) }
            out[i * m + j] = s
        }
    }
    return Tensor64(shape: full, data: out)
}

/// The rows of an (n, k) tensor.
private func rows(_ t: Tensor64) -> [[Double]] {
    let k = t.shape[1]
    return (0..<t.shape[0]).map { Array(t.data[($0 * k)..<($0 * k + k)]) }
}

/// x − logsumexp(x) for one row, with the maximum subtracted first so large logits do not overflow.
private func logSoftmaxRow(_ row: [Double]) -> [Double] {
    let top = row.max() ?? 0
    let lse = top + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - top) })
    return row.map { $0 - lse }
}

/// Labels carried as Doubles, checked to be class indices in [0, k).
private func classes(_ y: Tensor64, k: Int) throws -> [Int] {
    try y.data.enumerated().map { i, v in
        guard v == v.rounded(), v >= 0, v < Double(k) else {
            throw Diagnostic.badLabel(row: i, value: v, classes: k)
        }
        return Int(v)
    }
}
