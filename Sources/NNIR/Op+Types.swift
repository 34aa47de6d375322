extension Op {
    /// The result type of the op applied to operands of the given types. This is the one table of shape rules;
    /// the DSL builder and the verifier both use it. `declared` is the node's own type, needed by ops whose
    /// result is not determined by their operands (sources, `broadcast`).
    public func resultType(_ x: [TensorType], declared: TensorType? = nil) throws -> TensorType {
        func arity(_ k: Int) throws {
            if x.count != k { throw Diagnostic.error("\(mnemonic) takes \(k) operand(s), got \(x.count)") }
        }
        func float(_ i: Int) throws {
            if x[i].dtype != .f32 { throw Diagnostic.error("\(mnemonic): operand \(i) must be f32, got \(x[i])") }
        }
        switch self {
        case .input, .param, .state:
            guard let d = declared else { throw Diagnostic.error("\(mnemonic) needs a declared type") }
            return d
        case .hyper, .stepCount, .epochCount, .lrOverride, .stepsPerEpoch, .batchSize, .constant:
            try arity(0)
            return .scalar
        case .unary:
            try arity(1); try float(0)
            return x[0]
        case .binary:
            try arity(2); try float(0); try float(1)
            return TensorType(.f32, try Shape.broadcast(x[0].shape, x[1].shape))
        case .broadcast:
            try arity(1); try float(0)
            guard let d = declared else { throw Diagnostic.error("broadcast needs a declared type") }
            guard (try? Shape.broadcast(x[0].shape, d.shape)) == d.shape
            else { throw Diagnostic.error("cannot broadcast \(x[0].shape) to \(d.shape)") }
            return d
        case .sumTo:
            try arity(1); try float(0)
            guard let d = declared, d.dtype == .f32 else { throw Diagnostic.error("sum_to needs a declared f32 type") }
            guard (try? Shape.broadcast(d.shape, x[0].shape)) == x[0].shape
            else { throw Diagnostic.error("sum_to: \(d.shape) does not broadcast to \(x[0].shape)") }
            return d
        case .reshape:
            try arity(1); try float(0)
            guard let d = declared, d.dtype == .f32 else { throw Diagnostic.error("reshape needs a declared f32 type") }
            guard d.shape.batched == x[0].shape.batched, d.shape.fixedCount == x[0].shape.fixedCount else {
                throw Diagnostic.error("cannot reshape \(x[0].shape) (\(x[0].shape.fixedCount) elements\(x[0].shape.batched ? " per sample" : "")) to \(d.shape)")
            }
            return d
        case .conv2d(let a):
            try arity(x.count == 3 ? 3 : 2); try images(x[0]); try float(1)
            let w = x[1].shape, c = x[0].shape.dims[0]
            guard !w.batched, w.dims.count == 4 else { throw Diagnostic.error("conv2d: the weight must be (K,C/groups,kh,kw), got \(w)") }
            try a.check(channels: c, out: w.dims[0])
            guard w.dims[1] * a.groups == c else {
                throw Diagnostic.error("conv2d: the weight \(w) takes \(w.dims[1] * a.groups) input channels, the input \(x[0].shape) has \(c)")
            }
            if x.count == 3 {
                try float(2)
                guard x[2].shape == Shape([w.dims[0]]) else { throw Diagnostic.error("conv2d: the bias must be (\(w.dims[0])), got \(x[2].shape)") }
            }
            let oh = a.outputSize(x[0].shape.dims[1], kernel: w.dims[2], axis: 0)
            let ow = a.outputSize(x[0].shape.dims[2], kernel: w.dims[3], axis: 1)
            guard oh > 0, ow > 0 else {
                throw Diagnostic.error("conv2d: a \(w.dims[2])x\(w.dims[3]) kernel (\(a)) does not fit the input \(x[0].shape)")
            }
            return TensorType(.f32, Shape(batched: true, [w.dims[0], oh, ow]))
        case .conv2dGradInput(let a):
            try arity(2); try images(x[0])
            guard let d = declared else { throw Diagnostic.error("conv2d_grad_input needs a declared type") }
            guard try Op.conv2d(a).resultType([d, x[1]]) == x[0] else {
                throw Diagnostic.error("conv2d_grad_input: \(x[0]) is not the output of a convolution of \(d) by \(x[1])")
            }
            return d
        case .conv2dGradWeight(let a):
            try arity(2); try images(x[0]); try images(x[1])
            guard let d = declared else { throw Diagnostic.error("conv2d_grad_weight needs a declared type") }
            guard try Op.conv2d(a).resultType([x[1], d]) == x[0] else {
                throw Diagnostic.error("conv2d_grad_weight: \(x[0]) is not the output of a convolution of \(x[1]) by \(d)")
            }
            return d
        case .conv2dGradBias:
            try arity(1); try images(x[0])
            return TensorType(.f32, Shape([x[0].shape.dims[0]]))
        case .maxPool2d(let a), .avgPool2d(let a):
            try arity(1); try images(x[0])
            return TensorType(.f32, try a.pooled(x[0].shape))
        case .maxPool2dGrad(let a):
            try arity(2); try images(x[0]); try images(x[1])
            guard try a.pooled(x[1].shape) == x[0].shape else {
                throw Diagnostic.error("max_pool2d_grad: \(x[0].shape) is not the pooled shape of \(x[1].shape)")
            }
            return x[1]
        case .avgPool2dGrad(let a):
            try arity(1); try images(x[0])
            guard let d = declared, d.dtype == .f32, d.shape.batched, d.shape.dims.count == 3,
                  try a.pooled(d.shape) == x[0].shape else {
                throw Diagnostic.error("avg_pool2d_grad: \(x[0].shape) is not the pooled shape of \(declared?.shape.description ?? "?")")
            }
            return d
        case .matmul(let ta, let tb):
            try arity(2); try float(0); try float(1)
            return try matmulType(x[0].shape, x[1].shape, ta, tb)
        case .sumBatch:
            try arity(1); try float(0)
            guard x[0].shape.batched else { throw Diagnostic.error("sum_batch needs a batched operand, got \(x[0].shape)") }
            return TensorType(.f32, x[0].shape.unbatched)
        case .sumAll:
            try arity(1); try float(0)
            return .scalar
        case .concat:
            try arity(2); try rows(x[0]); try rows(x[1])
            return TensorType(.f32, Shape(batched: true, [x[0].shape.dims[0] + x[1].shape.dims[0]]))
        case .slice(let s, let c):
            try arity(1); try rows(x[0])
            guard s >= 0, c > 0, s + c <= x[0].shape.dims[0] else { throw Diagnostic.error("slice [\(s)..<\(s + c)] of \(x[0].shape)") }
            return TensorType(.f32, Shape(batched: true, [c]))
        case .embed(let s, let total):
            try arity(1); try rows(x[0])
            guard s >= 0, s + x[0].shape.dims[0] <= total else { throw Diagnostic.error("embed \(x[0].shape) at \(s) of \(total)") }
            return TensorType(.f32, Shape(batched: true, [total]))
        case .groupMax(let k):
            try arity(1); try rows(x[0])
            guard k > 0, x[0].shape.dims[0] % k == 0 else { throw Diagnostic.error("group_max[\(k)] of \(x[0].shape): not a multiple of \(k)") }
            return TensorType(.f32, Shape(batched: true, [x[0].shape.dims[0] / k]))
        case .groupMaxGrad(let k):
            try arity(2); try rows(x[0]); try rows(x[1])
            guard x[1].shape.dims[0] == x[0].shape.dims[0] * k else { throw Diagnostic.error("group_max_grad[\(k)]: \(x[0].shape) and \(x[1].shape)") }
            return x[1]
        case .sumRow:
            try arity(1); try float(0)
            guard x[0].shape.batched, x[0].shape.dims.count == 1 else { throw Diagnostic.error("sum_row needs (n,k), got \(x[0].shape)") }
            return TensorType(.f32, Shape(batched: true, []))
        case .logSoftmax:
            try arity(1); try rows(x[0])
            return x[0]
        case .logSoftmaxGrad:
            try arity(2); try rows(x[0]); try same(x[0], x[1])
            return x[0]
        case .nll, .softmaxCrossEntropy:
            try arity(2); try rows(x[0]); try labels(x[1], x[0])
            return .scalar
        case .nllGrad:
            try arity(3); try scalar(x[0]); try labels(x[1], x[2]); try rows(x[2])
            return x[2]
        case .softmaxCrossEntropyGrad:
            try arity(3); try scalar(x[0]); try rows(x[1]); try labels(x[2], x[1])
            return x[1]
        case .gatherLabel, .gatherLabelGrad:
            try arity(2); try rows(x[0]); try labels(x[1], x[0])
            return x[0]
        case .assign:
            try arity(1)
            return x[0]
        case .byMode:
            try arity(2); try float(0); try float(1)
            return TensorType(.f32, try Shape.broadcast(x[0].shape, x[1].shape))
        case .dropoutMask:   // unbatched: one mask per step over a weight (DropConnect)
            try arity(1); try scalar(x[0])
            guard let d = declared, d.dtype == .f32 else { throw Diagnostic.error("dropout_mask needs an f32 type") }
            return d
        case .uniformNoise:
            try arity(0)
            guard let d = declared, d.dtype == .f32 else { throw Diagnostic.error("uniform_noise needs an f32 type") }
            return d
        case .fractionalMaxPool2d(let a):
            try arity(2); try images(x[0])
            try a.checkSamples(x[1], x[0])
            return TensorType(.f32, try a.pooled(x[0].shape))
        case .fractionalMaxPool2dGrad(let a):
            try arity(3); try images(x[0]); try images(x[1])
            try a.checkSamples(x[2], x[1])
            guard try a.pooled(x[1].shape) == x[0].shape else {
                throw Diagnostic.error("fractional_max_pool2d_grad: \(x[0].shape) is not the pooled shape of \(x[1].shape)")
            }
            return x[1]
        }
    }

    /// A batch of images, f32 (n, C, H, W).
    private func images(_ t: TensorType) throws {
        guard t.dtype == .f32, t.shape.batched, t.shape.dims.count == 3 else {
            throw Diagnostic.error("\(mnemonic) needs f32 images (n,C,H,W), got \(t)")
        }
    }
    private func rows(_ t: TensorType) throws {
        guard t.dtype == .f32, t.shape.batched, t.shape.dims.count == 1 else {
            throw Diagnostic.error("\(mnemonic) needs f32 (n,k) logits, got \(t)")
        }
    }
    private func same(_ a: TensorType, _ b: TensorType) throws {
        guard a == b else { throw Diagnostic.error("\(mnemonic): operand types differ: \(a) and \(b)") }
    }
    private func scalar(_ t: TensorType) throws {
        guard t == .scalar else { throw Diagnostic.error("\(mnemonic): expected a scalar, got \(t)") }
    }
    private func labels(_ y: TensorType, _ logits: TensorType) throws {
        guard y.dtype == .i32, y.shape == Shape(batched: true, []) else {
            throw Diagnostic.error("\(mnemonic) needs i32 (n) class labels, got \(y)")
        }
    }
    private func matmulType(_ a: Shape, _ b: Shape, _ ta: Bool, _ tb: Bool) throws -> TensorType {
        guard a.rank == 2, b.rank == 2 else {
            throw Diagnostic.error("matmul needs rank-2 operands, got \(a) and \(b)")
        }
        // Each operand is (rows, cols) with the batch dimension, if any, as a symbolic row or column count.
        func dims(_ s: Shape) -> [Int?] { s.batched ? [nil, s.dims[0]] : s.dims.map { Optional($0) } }
        var da = dims(a), db = dims(b)
        if ta { da.reverse() }
        if tb { db.reverse() }
        guard da[1] == db[0] else {
            throw Diagnostic.error("matmul: inner dimensions differ: \(a)\(ta ? "ᵀ" : "") @ \(b)\(tb ? "ᵀ" : "")")
        }
        // A contraction over the batch (dW = dyᵀ x) gives a fixed shape; one with a batch row stays batched.
        switch (da[0], db[1]) {
        case (nil, let m?): return TensorType(.f32, Shape(batched: true, [m]))
        case (let r?, let m?): return TensorType(.f32, Shape([r, m]))
        default: throw Diagnostic.error("matmul: a batch dimension cannot be the result's column dimension")
        }
    }
}

extension Shape {
    /// The result shape of an elementwise op: equal shapes, a scalar with anything, or an unbatched tensor whose
    /// dimensions equal the batched operand's per-sample dimensions (a bias), or a per-sample value (n) with a
    /// batched operand (a row statistic).
    public static func broadcast(_ a: Shape, _ b: Shape) throws -> Shape {
        if a == b { return a }
        if a.isScalar { return b }
        if b.isScalar { return a }
        if a.batched, !b.batched, a.dims == b.dims { return a }
        if b.batched, !a.batched, a.dims == b.dims { return b }
        if a.batched, b.batched, b.dims.isEmpty { return a }   // one value per sample, repeated along its row
        if a.batched, b.batched, a.dims.isEmpty { return b }
        // NumPy's rule, right-aligned: each axis equal, or 1 in one operand. The batch dimension is a symbol
        // that only meets itself or a 1, and stays the leading axis.
        let fa = a.symbolic, fb = b.symbolic, r = Swift.max(fa.count, fb.count)
        let pa = Array(repeating: 1, count: r - fa.count) + fa, pb = Array(repeating: 1, count: r - fb.count) + fb
        var out: [Int?] = []
        for (x, y) in zip(pa, pb) {
            if x == y { out.append(x) } else if x == 1 { out.append(y) } else if y == 1 { out.append(x) } else {
                throw Diagnostic.error("cannot broadcast shapes \(a) and \(b)")
            }
        }
        if let i = out.firstIndex(of: nil) {
            guard i == 0, !out.dropFirst().contains(nil) else {
                throw Diagnostic.error("cannot broadcast shapes \(a) and \(b): the batch would not lead")
            }
            return Shape(batched: true, out.dropFirst().map { $0! })
        }
        return Shape(out.map { $0! })
    }

    /// The dimensions with the batch as nil in front: (n,C,H,W) is [nil, C, H, W].
    public var symbolic: [Int?] { (batched ? [nil] : []) + dims.map { Optional($0) } }
}

extension Conv2dAttrs {
    func check(channels c: Int, out k: Int) throws {
        guard stride.count == 2, padding.count == 2, dilation.count == 2, stride.allSatisfy({ $0 > 0 }),
              padding.allSatisfy({ $0 >= 0 }), dilation.allSatisfy({ $0 > 0 }), groups > 0 else {
            throw Diagnostic.error("conv2d: invalid geometry \(self)")
        }
        guard c % groups == 0, k % groups == 0 else {
            throw Diagnostic.error("conv2d: groups \(groups) must divide the input channels \(c) and the output channels \(k)")
        }
    }
}

extension Pool2dAttrs {
    /// The shape after pooling (n, C, H, W), or an error naming what does not fit.
    public func pooled(_ s: Shape) throws -> Shape {
        guard kernel.count == 2, stride.count == 2, padding.count == 2, kernel.allSatisfy({ $0 > 0 }),
              stride.allSatisfy({ $0 > 0 }), padding.allSatisfy({ $0 >= 0 }) else {
            throw Diagnostic.error("pooling: invalid geometry \(self)")
        }
        guard padding[0] * 2 <= kernel[0], padding[1] * 2 <= kernel[1] else {
            throw Diagnostic.error("pooling: padding \(padding[0])x\(padding[1]) must be at most half the kernel \(kernel[0])x\(kernel[1])")
        }
        let oh = outputSize(s.dims[1], axis: 0), ow = outputSize(s.dims[2], axis: 1)
        guard oh > 0, ow > 0 else { throw Diagnostic.error("pooling: a \(kernel[0])x\(kernel[1]) window does not fit \(s)") }
        return Shape(batched: true, [s.dims[0], oh, ow])
    }
}

extension FractionalPool2dAttrs {
    /// The shape after pooling (n, C, H, W), or an error naming what does not fit (PyTorch's checks).
    public func pooled(_ s: Shape) throws -> Shape {
        guard kernel.count == 2, output.count == 2, kernel.allSatisfy({ $0 > 0 }), output.allSatisfy({ $0 > 0 }) else {
            throw Diagnostic.error("fractional max pooling: invalid geometry \(self)")
        }
        for (a, axis) in ["height", "width"].enumerated() where s.dims[1 + a] - kernel[a] + 1 < output[a] {
            throw Diagnostic.error("fractional max pooling: a \(kernel[0])x\(kernel[1]) window cannot give \(output[a]) outputs along the input's \(axis) \(s.dims[1 + a])")
        }
        return Shape(batched: true, [s.dims[0], output[0], output[1]])
    }

    /// The samples u are f32 (n, C, 2) for images x (n, C, H, W).
    func checkSamples(_ u: TensorType, _ x: TensorType) throws {
        guard u.dtype == .f32, u.shape == Shape(batched: true, [x.shape.dims[0], 2]) else {
            throw Diagnostic.error("fractional_max_pool2d: the samples must be f32 (n,\(x.shape.dims[0]),2), got \(u)")
        }
    }
}
