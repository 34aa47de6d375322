import NNIR

/// The optimizer state kept per parameter, in slot order; slot k of parameter p lives at
/// state[k · params_numel + offset(p)].
public func optimizerSlots(_ spec: OptimizerSpec) -> [String] {
    switch spec {
    case .sgd(_, let momentum, _): return momentum > 0 ? ["momentum"] : []
    case .adam: return ["m", "v"]
    }
}

/// The name of optimizer state slot `slot` of parameter `param`, e.g. "m[0.weight]".
public func stateName(_ slot: String, _ param: String) -> String { "\(slot)[\(param)]" }

extension Graph {
    /// Appends the learning-rate schedule and the optimizer update as graph code: for every trainable
    /// parameter, `assign` nodes that write the new parameter and state values. Adds output "lr".
    public func withOptimizerUpdate() -> Graph {
        var e = GraphEditor(self)
        let lr = e.learningRate(config.schedule, base: config.optimizer.learningRate)
        e.graph.outputs["lr"] = lr
        for p in params where p.trainable {
            guard let g = outputs["grad.\(p.name)"],
                  let pv = ids.first(where: { self[$0].op == .param(p.name) }) else { continue }
            e.update(p, value: pv, grad: g, lr: lr, spec: config.optimizer)
        }
        return e.graph
    }
}

extension GraphEditor {
    mutating func learningRate(_ schedule: ScheduleSpec, base: Double) -> ValueID {
        graph.declareHyper("lr", base, "learning rate")
        switch schedule {
        case .constant: return hyper("lr")
        }
    }

    mutating func state(_ slot: String, _ p: ParamInfo) -> ValueID {
        add(.state(stateName(slot, p.name)), [], declared: TensorType(.f32, Shape(p.shape)))
    }

    mutating func update(_ p: ParamInfo, value pv: ValueID, grad g: ValueID, lr: ValueID, spec: OptimizerSpec) {
        switch spec {
        case .sgd(_, let momentum, let nesterov):
            guard momentum > 0 else {
                add(.assign(p.name), [sub(pv, mul(lr, g))])
                return
            }
            graph.declareHyper("momentum", momentum, "momentum factor μ")
            let mu = hyper("momentum")
            let v = add(mul(mu, state("momentum", p)), g)                       // v ← μv + g
            add(.assign(stateName("momentum", p.name)), [v])
            let step = nesterov ? add(g, mul(mu, v)) : v                         // Nesterov looks ahead
            add(.assign(p.name), [sub(pv, mul(lr, step))])
        case .adam(_, let b1, let b2, let eps):
            graph.declareHyper("beta1", b1, "Adam β₁, decay of the first moment")
            graph.declareHyper("beta2", b2, "Adam β₂, decay of the second moment")
            graph.declareHyper("eps", eps, "Adam ε, added to the denominator")
            let (beta1, beta2, t) = (hyper("beta1"), hyper("beta2"), add(.stepCount, []))
            let one = const(1)
            // Scalars, once per step: step size lr/(1−β₁ᵗ) and 1/√(1−β₂ᵗ), arranged as PyTorch does.
            let stepSize = div(lr, sub(one, pow(beta1, t)))
            let invSqrtBC2 = unary(.reciprocal, unary(.sqrt, sub(one, pow(beta2, t))))
            let m = add(mul(beta1, state("m", p)), mul(sub(one, beta1), g))     // m ← β₁m + (1−β₁)g
            let v = add(mul(beta2, state("v", p)), mul(sub(one, beta2), unary(.square, g)))
            add(.assign(stateName("m", p.name)), [m])
            add(.assign(stateName("v", p.name)), [v])
            let denom = add(mul(unary(.sqrt, v), invSqrtBC2), hyper("eps"))
            add(.assign(p.name), [sub(pv, mul(stepSize, div(m, denom)))])
        }
    }
}
