import NNIR

/// The vector-Jacobian product of every op: the gradient of each operand, given the node `n`, its result `y`
/// and the gradient `g` of that result. `nil` means no gradient flows to that operand. One line per op.
extension GraphEditor {
    mutating func vjp(_ n: Node, y: ValueID, g: ValueID) -> [ValueID?] {
        let x = n.inputs
        let t = x.map { type($0) }
        switch n.op {
        case .unary(.neg):        return [neg(g)]
        case .unary(.relu):       return [mul(g, unary(.step, y))]                  // step(relu(x)) = step(x)
        case .unary(.sigmoid):    return [mul(g, mul(y, sub(const(1), y)))]
        case .unary(.tanh):       return [mul(g, sub(const(1), unary(.square, y)))]
        case .unary(.exp):        return [mul(g, y)]
        case .unary(.log):        return [div(g, x[0])]
        case .unary(.sqrt):       return [div(g, mul(const(2), y))]
        case .unary(.square):     return [mul(g, mul(const(2), x[0]))]
        case .unary(.reciprocal): return [neg(mul(g, unary(.square, y)))]
        case .unary(.step):       return [nil]
        case .unary(.cos):        return [neg(mul(g, unary(.sin, x[0])))]
        case .unary(.sin):        return [mul(g, unary(.cos, x[0]))]
        case .unary(.floor):      return [nil]                                      // zero almost everywhere
        case .unary(.abs):        return [mul(g, unary(.sign, x[0]))]
        case .unary(.sign):       return [nil]
        case .unary(.erf):        return [mul(g, mul(const(2 / Double.pi.squareRoot()), unary(.exp, neg(unary(.square, x[0])))))]
        case .unary(.softplus):   return [mul(g, unary(.sigmoid, x[0]))]
        case .binary(.add):       return [unbroadcast(g, to: t[0]), unbroadcast(g, to: t[1])]
        case .binary(.sub):       return [unbroadcast(g, to: t[0]), unbroadcast(neg(g), to: t[1])]
        case .binary(.mul):       return [unbroadcast(mul(g, x[1]), to: t[0]), unbroadcast(mul(g, x[0]), to: t[1])]
        case .binary(.div):       return [unbroadcast(div(g, x[1]), to: t[0]),
                                          unbroadcast(neg(div(mul(g, y), x[1])), to: t[1])]
        case .binary(.pow):       return [unbroadcast(mul(g, mul(x[1], pow(x[0], sub(x[1], const(1))))), to: t[0]),
                                          unbroadcast(mul(g, mul(y, unary(.log, x[0]))), to: t[1])]
        case .binary(.min):       return chosen(g, unary(.step, sub(x[1], x[0])), t)   // a where a < b
        case .binary(.max):       return chosen(g, unary(.step, sub(x[0], x[1])), t)   // a where a > b
        case .broadcast:          return [unbroadcast(g, to: t[0])]
        case .matmul(false, false): return [matmul(g, x[1], transB: true), matmul(x[0], g, transA: true)]
        case .matmul(false, true):  return [matmul(g, x[1]), matmul(g, x[0], transA: true)]
        case .matmul(true, false):  return [matmul(x[1], g, transB: true), matmul(x[0], g)]
        case .matmul(true, true):   return [matmul(x[1], g, transA: true, transB: true),
                                            matmul(g, x[0], transA: true, transB: true)]
        case .sumBatch, .sumAll, .sumRow: return [broadcast(g, to: t[0])]
        case .concat:             let p = t[0].shape.dims[0], q = t[1].shape.dims[0]
                                  return [add(.slice(start: 0, count: p), [g]), add(.slice(start: p, count: q), [g])]
        case .slice(let s, _):    return [add(.embed(start: s, total: t[0].shape.dims[0]), [g])]
        case .embed(let s, _):    return [add(.slice(start: s, count: t[0].shape.dims[0]), [g])]
        case .groupMax(let k):    return [add(.groupMaxGrad(k), [g, x[0]])]
        case .logSoftmax:         return [add(.logSoftmaxGrad, [g, y])]
        case .nll:                return [add(.nllGrad, [g, x[1], x[0]]), nil]
        case .softmaxCrossEntropy: return [add(.softmaxCrossEntropyGrad, [g, x[0], x[1]]), nil]
        case .gatherLabel:        return [add(.gatherLabelGrad, [g, x[1]]), nil]
        case .reshape:            return [add(.reshape, [g], declared: t[0])]
        case .sumTo:              return [broadcast(g, to: t[0])]
        case .conv2d(let a):      return [add(.conv2dGradInput(a), [g, x[1]], declared: t[0]),
                                          add(.conv2dGradWeight(a), [g, x[0]], declared: t[1])]
                                          + (x.count == 3 ? [add(.conv2dGradBias, [g])] : [])
        case .conv2dGradBias:     return [broadcast(add(.reshape, [g], declared: TensorType(.f32, Shape([t[0].shape.dims[0], 1, 1]))), to: t[0])]
        case .maxPool2d(let a):   return [add(.maxPool2dGrad(a), [g, x[0]])]
        case .avgPool2d(let a):   return [add(.avgPool2dGrad(a), [g], declared: t[0])]
        case .fractionalMaxPool2d(let a): return [add(.fractionalMaxPool2dGrad(a), [g, x[0], x[1]]), nil]   // no gradient to u
        case .byMode: preconditionFailure("by_mode reached autodiff: graphs are specialized per mode first")
        case .dropoutMask,
             .input, .param, .state, .hyper, .stepCount, .epochCount, .lrOverride, .stepsPerEpoch, .batchSize, .constant, .assign,
             .logSoftmaxGrad, .nllGrad, .softmaxCrossEntropyGrad, .groupMaxGrad, .gatherLabelGrad,
             .conv2dGradInput, .conv2dGradWeight, .maxPool2dGrad, .avgPool2dGrad,
             .uniformNoise, .fractionalMaxPool2dGrad:
            return Array(repeating: nil, count: x.count)
        }
    }
}

extension GraphEditor {
    /// The gradient of min or max: `g` to operand a where `pickA` is 1, to operand b elsewhere.
    mutating func chosen(_ g: ValueID, _ pickA: ValueID, _ t: [TensorType]) -> [ValueID?] {
        let ga = mul(g, pickA)
        return [unbroadcast(ga, to: t[0]), unbroadcast(sub(g, ga), to: t[1])]
    }
}
