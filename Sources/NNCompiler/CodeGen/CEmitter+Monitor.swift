import NNIR

/// `nncc compile --monitor`: a second train step, `train_step_monitor`, that is `train_step` with one call of
/// `nnrt_monitor_act` (runtime/monitor.c) after each kernel that writes a forward activation. The memory plan lets a
/// later kernel reuse an activation's bytes, so its statistics are taken right after the kernel that wrote it, while
/// the values are live. Without the flag nothing here is emitted and the C is what it was.
extension CEmitter {
    /// The forward activations: the layers' outputs (values the DSL named, `h1`), float32 with a batch dimension,
    /// stored in the arena, computed from the input x without the labels y (so neither the loss nor a gradient), in
    /// the train program. A term the backward pass precomputes from the forward values (`one_minus_square_h3`, a
    /// tanh's derivative) is not a layer's output and is left out.
    func monitoredActivations() -> Set<ValueID> {
        guard monitor, program.kind == .train else { return [] }
        let users = graph.users()
        func reached(from input: String) -> Set<ValueID> {
            var seen = Set<ValueID>(), stack = graph.ids.filter { graph[$0].op == .input(input) }
            while let v = stack.popLast() {
                for u in users[v.index] where seen.insert(u).inserted { stack.append(u) }
            }
            return seen
        }
        let fromY = reached(from: "y")
        let candidates = reached(from: "x").filter { v in
            guard case .arena? = plan.storage[v], plan.windowBytes[v] == nil, !fromY.contains(v) else { return false }
            let t = graph.type(v)
            return t.dtype == .f32 && t.shape.batched
        }
        // The layer outputs the DSL names (a Sequential's); a model built with the functional API names none, so
        // there the activation functions' outputs stand for its layers (under their C names).
        let named = candidates.filter { graph[$0].name != nil }
        return named.isEmpty ? candidates.filter(isActivation) : named
    }

    /// An activation function's output (ReLU, tanh, sigmoid).
    private func isActivation(_ v: ValueID) -> Bool {
        if case .unary(let f) = graph[v].op { return [.relu, .tanh, .sigmoid].contains(f) }
        return false
    }

    /// `nnrt_monitor_act(ctx, "h1", "relu", h1, n, 256);` for each forward activation kernel `i` writes.
    func monitorCalls(after i: Int) -> [CStmt] {
        guard monitor else { return [] }
        let acts = monitoredActivations()
        return writes(program.kernels[i], index: i).filter(acts.contains).map { v in
            .expr(.call("nnrt_monitor_act", [.id("ctx"), .string(ptr(v)), .string(activationKind(v)), .id(ptr(v)), .id("n"),
                                             .int(graph.type(v).shape.fixedCount)]))
        }
    }

    /// What computed an activation, for the doctor's dead and saturated units: "relu" (also a max pooling of one),
    /// "tanh", "sigmoid", or "" for anything else.
    func activationKind(_ v: ValueID) -> String {
        switch graph[v].op {
        case .unary(let f) where [.relu, .tanh, .sigmoid].contains(f): return f.rawValue
        case .maxPool2d: return graph[v].inputs.first.map(activationKind) ?? ""
        default: return ""
        }
    }

    /// The instrumented train step around `body`.
    func monitorFunction(_ body: [CStmt]) -> CFunction {
        CFunction(comment: ["train_step with the forward activations handed to the monitor (--monitor every:N runs it every N steps)."],
                  signature: "static float train_step_monitor(nnrt_ctx *ctx, int n, const float *x, const void *y_)", body: body)
    }
}
