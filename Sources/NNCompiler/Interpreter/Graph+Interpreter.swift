import NNIR

extension Graph {
    /// Evaluates every node in float64: the reference the generated C is checked against.
    ///
    /// - Parameters:
    ///   - inputs: batched data by input name ("x", "y"); labels as integer-valued Doubles.
    ///   - params: parameters and buffers by name (their state_dict keys).
    ///   - state: optimizer state; a missing slot reads as zeros, as the runtime initialises its state arena.
    ///   - hypers: overrides of the graph's declared hyperparameter values, by name (as `--lr` on the trainer's
    ///     command line).
    ///   - step: the 1-based update index `stepCount` reads.
    ///   - epoch: the 0-based epoch `epochCount` reads.
    ///   - stepsPerEpoch: what `stepsPerEpoch` reads (a schedule whose lengths count epochs).
    ///   - batch: `n`; by default the leading dimension of input "x", else of the first batched input bound.
    ///   - draws: the values of random nodes (`dropout_mask`, `uniform_noise`), which the interpreter cannot draw:
    ///     fixed masks and samples, as the NumPy reference takes them.
    /// - Returns: the value of every node. An `assign` node's value is the value it writes.
    ///
    ///     let v = try graph.evaluate(inputs: ["x": x, "y": y], params: weights)
    ///     let loss = v[graph.outputs[.loss]!]!.scalar
    public func evaluate(inputs: [String: Tensor64], params: [String: Tensor64],
                         state: [StateID: Tensor64] = [:], hypers: [String: Double] = [:],
                         step: Int = 1, epoch: Int = 0, stepsPerEpoch: Int = 1,
                         batch: Int? = nil, draws: [ValueID: Tensor64] = [:]) throws -> [ValueID: Tensor64] {
        let n = try batchSize(inputs, override: batch)
        var values: [Tensor64] = []
        values.reserveCapacity(nodes.count)
        for v in ids {
            let node = self[v]
            let shape = node.type.shape
            if shape.batched, n == nil { throw Diagnostic.unknownBatchSize }
            let full = shape.full(batch: n ?? 0)
            let operands = node.inputs.map { values[$0.index] }
            let result: Tensor64
            switch node.op {
            case .input(let name):
                result = try bound(inputs[name], "input", name, full)
            case .param(let p):
                result = try bound(params[self[p].name], "param", self[p].name, full)
            case .state(let s):
                result = try bound(state[s] ?? Tensor64(shape: full, repeating: 0), "state", name(of: s), full)
            case .hyper(let h):
                result = .scalar(hypers[self[h].name] ?? self[h].value)
            case .stepCount: result = .scalar(Double(step))
            case .epochCount: result = .scalar(Double(epoch))
            case .lrOverride: result = .scalar(0)
            case .stepsPerEpoch: result = .scalar(Double(stepsPerEpoch))
            case .batchSize:
                guard let n else { throw Diagnostic.unknownBatchSize }
                result = .scalar(Double(n))
            case .constant(let c): result = .scalar(c)
            case .dropoutMask where draws[v] != nil, .uniformNoise where draws[v] != nil:
                result = try bound(draws[v], "draw", "%\(v.index)", full)
            default:
                // A per-sample value (n) used with a batched tensor is repeated along each row first.
                let expanded = zip(node.inputs, operands).map { x, t -> Tensor64 in
                    guard type(x).shape == Shape(batched: true, []), node.type.shape.batched,
                          !node.type.shape.dims.isEmpty, node.op.info.kind == .elementwise else { return t }
                    let k = node.type.shape.fixedCount
                    return Tensor64(shape: full, data: t.data.flatMap { Array(repeating: $0, count: k) })
                }
                result = try node.op.apply(expanded, resultShape: full)
            }
            assert(result.shape == full, "\(line(v)): interpreter produced \(result.shape)")
            values.append(result)
        }
        return Dictionary(uniqueKeysWithValues: zip(ids, values))
    }

    /// What the `assign` nodes write, by buffer, given the values from `evaluate`: one optimizer step.
    public func assignments(_ values: [ValueID: Tensor64]) -> [BufferID: Tensor64] {
        var out: [BufferID: Tensor64] = [:]
        for v in ids { if case .assign(let b) = self[v].op { out[b] = values[v] } }
        return out
    }

    private func batchSize(_ inputs: [String: Tensor64], override: Int?) throws -> Int? {
        if let override { return override }
        if let x = inputs["x"], let n = x.shape.first { return n }
        for v in ids {
            if case .input(let name) = self[v].op, self[v].type.shape.batched, let t = inputs[name] {
                return t.shape.first
            }
        }
        return nil
    }

    private func bound(_ t: Tensor64?, _ kind: String, _ name: String, _ full: [Int]) throws -> Tensor64 {
        guard let t else { throw Diagnostic.missingValue(kind: kind, name: name) }
        guard t.shape == full else { throw Diagnostic.shapeMismatch(name: name, expected: full, got: t.shape) }
        return t
    }
}
