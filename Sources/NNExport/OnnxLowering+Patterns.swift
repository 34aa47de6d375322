import NNIR

/// Layers that the DSL builds from several IR ops but ONNX has as one operator: Linear (Gemm with its bias),
/// BatchNorm in eval mode (BatchNormalization) and global average pooling (GlobalAveragePool). Each pattern is
/// the layer's exact arithmetic, so a match never changes what is computed, only how the file reads and what
/// a runtime can fuse (a Conv followed by BatchNormalization, say). Everything else is lowered op by op.
extension OnnxLowering {
    mutating func fusedPattern(_ v: ValueID) throws -> String? {
        if let r = try linear(v) { return r }
        if let r = try batchNorm(v) { return r }
        return try globalAveragePool(v)
    }

    /// x Wᵀ + b: an add of a bias (k) to a matmul (n, k) used nowhere else.
    mutating func linear(_ v: ValueID) throws -> String? {
        guard let (a, c) = operands(v, .add) else { return nil }
        for (m, bias) in [(a, c), (c, a)] {
            guard case .matmul(let ta, let tb) = graph[m].op, usedOnce(m), graph.type(m).shape.batched,
                  graph.type(m).shape.dims.count == 1, graph.type(bias).shape == Shape(graph.type(m).shape.dims)
            else { continue }
            let inputs = try (graph[m].inputs + [bias]).map { try value($0) }
            begin(m, "Linear (matmul + bias)")
            return node("Gemm", inputs, [Attr.int("transA", ta ? 1 : 0), Attr.int("transB", tb ? 1 : 0)])
        }
        return nil
    }

    /// BatchNorm (1d or 2d) in eval mode, as the DSL builds it: (x − mean)·(1/√(var + eps)), then ·weight + bias
    /// when it is affine; mean, var, weight and bias one value per channel, (C) or (C, 1, 1).
    mutating func batchNorm(_ v: ValueID) throws -> String? {
        var core = v, affine: (scale: ValueID, shift: ValueID)? = nil
        if let (a, c) = operands(v, .add) {
            guard let (y, shift) = [(a, c), (c, a)].first(where: { normalized($0.0) != nil }),
                  let (p, q) = operands(y, .mul) else { return nil }
            guard let (core0, scale) = [(p, q), (q, p)].first(where: { normalizedCore($0.0) != nil }) else { return nil }
            core = core0
            affine = (scale, shift)
        }
        guard let (x, mean, variance, eps) = normalizedCore(core) else { return nil }
        let rank = graph.type(x).shape.rank, channels = graph.type(x).shape.dims[0]
        guard let m = perChannel(mean, channels, rank), let s = perChannel(variance, channels, rank) else { return nil }
        var weight: ValueID?, bias: ValueID?
        if let affine {
            guard let w = perChannel(affine.scale, channels, rank), let b0 = perChannel(affine.shift, channels, rank) else { return nil }
            (weight, bias) = (w, b0)
        }
        let xv = try value(x), mv = try value(m), sv = try value(s)
        let wv = try weight.map { try value($0) }, bv = try bias.map { try value($0) }
        begin(core, "BatchNorm (eval: running statistics)")
        let ones = wv ?? b.floats("bn_scale", dims: [channels], Array(repeating: 1, count: channels))
        let zeros = bv ?? b.floats("bn_bias", dims: [channels], Array(repeating: 0, count: channels))
        return node("BatchNormalization", [xv, ones, zeros, mv, sv], [Attr.float("epsilon", Float(eps))])
    }

    /// The mul at the end of `(x − mean)·(1/√(var + eps))`, as the affine pattern's operand: non-nil when `y`
    /// is one (either operand order).
    func normalized(_ y: ValueID) -> ValueID? {
        guard let (p, q) = operands(y, .mul) else { return nil }
        return normalizedCore(p) != nil || normalizedCore(q) != nil ? y : nil
    }

    /// (x − mean)·(1/√(var + eps)) with x batched (n, C, …) and eps a constant.
    func normalizedCore(_ y: ValueID) -> (x: ValueID, mean: ValueID, variance: ValueID, eps: Double)? {
        guard let (p, q) = operands(y, .mul) else { return nil }
        for (centered, inv) in [(p, q), (q, p)] {
            guard let (x, mean) = operands(centered, .sub), graph.type(x).shape.batched,
                  !graph.type(x).shape.dims.isEmpty, graph[inv].op == .unary(.reciprocal),
                  let root = graph[inv].inputs.first, graph[root].op == .unary(.sqrt),
                  let (a, c) = operands(graph[root].inputs[0], .add) else { continue }
            for (variance, e) in [(a, c), (c, a)] {
                if case .constant(let eps) = graph[e].op { return (x, mean, variance, eps) }
            }
        }
        return nil
    }

    /// The (C) source of a per-channel value of an (n, C, …) tensor of rank `rank`: the value itself when it is
    /// (C) and the tensor is (n, C); the reshaped value when it is (C) reshaped to (C, 1, …).
    func perChannel(_ v: ValueID, _ channels: Int, _ rank: Int) -> ValueID? {
        let flat = Shape([channels])
        if graph.type(v).shape == flat { return rank == 2 ? v : nil }
        guard graph[v].op == .reshape, let u = graph[v].inputs.first, graph.type(u).shape == flat,
              graph.type(v).shape == Shape([channels] + Array(repeating: 1, count: rank - 2)) else { return nil }
        return u
    }

    /// AdaptiveAvgPool2d(1): the sum over H and W, (n, C, 1, 1), times 1/(H·W).
    mutating func globalAveragePool(_ v: ValueID) throws -> String? {
        guard let (a, c) = operands(v, .mul) else { return nil }
        for (sum, k) in [(a, c), (c, a)] {
            guard graph[sum].op == .sumTo, case .constant(let scale) = graph[k].op else { continue }
            let x = graph[sum].inputs[0], from = graph.type(x).shape, to = graph.type(sum).shape
            guard from.batched, from.dims.count == 3, to == Shape(batched: true, [from.dims[0], 1, 1]),
                  abs(scale * Double(from.dims[1] * from.dims[2]) - 1) < 1e-12 else { continue }
            let xv = try value(x)
            begin(sum, "global average pooling")
            return node("GlobalAveragePool", [xv])
        }
        return nil
    }

    /// The two operands of `v` when it is the binary op `f`.
    func operands(_ v: ValueID, _ f: BinaryFn) -> (ValueID, ValueID)? {
        guard graph[v].op == .binary(f) else { return nil }
        return (graph[v].inputs[0], graph[v].inputs[1])
    }

    /// Used by one node of the output's cone.
    func usedOnce(_ v: ValueID) -> Bool { users[v.index].filter { cone.contains($0) }.count == 1 }
}
