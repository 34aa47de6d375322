import NNIR

extension Graph {
    /// Appends the learning-rate schedule and the optimizer update as graph code: for every trainable
    /// parameter, `assign` nodes that write the new parameter and state values. Adds the output
    /// `.learningRate`.
    public func withOptimizerUpdate() -> Graph {
        var e = GraphEditor(self)
        let lr = e.learningRate(config)
        e.graph.outputs[.learningRate] = lr
        if case .lbfgs(_, let maxIter, let maxEval, let history, let tolGrad, let tolChange, _) = config.optimizer {
            e.declareLBFGS(maxIter: maxIter, maxEval: maxEval, history: history, tolGrad: tolGrad, tolChange: tolChange)
            return e.graph   // the runtime owns L-BFGS's update: the step computes the loss and gradients only
        }
        for p in paramIDs where self[p].trainable {
            guard let g = gradient(of: p), let pv = node(of: p) else { continue }
            e.update(p, value: pv, grad: g, lr: lr, spec: config.optimizer)
        }
        return e.graph
    }
}

extension GraphEditor {
    mutating func state(_ slot: StateSlot, _ p: ParamID) -> ValueID {
        add(.state(StateID(slot, of: p)), [], declared: TensorType(.f32, Shape(graph[p].shape)))
    }

    /// Writes `value` into `slot` of parameter `p`'s optimizer state.
    mutating func assign(_ slot: StateSlot, _ p: ParamID, _ value: ValueID) { add(.assign(.state(StateID(slot, of: p))), [value]) }

    /// A hyperparameter node, declared with its default on first use.
    mutating func hyper(_ name: String, _ value: Double, _ help: String) -> ValueID {
        add(.hyper(graph.declareHyper(name, value, help)), [])
    }

    /// L-BFGS's numbers, as run-time hyperparameters with torch.optim.LBFGS's names; runtime/lbfgs.c reads them.
    mutating func declareLBFGS(maxIter: Int, maxEval: Int?, history: Int, tolGrad: Double, tolChange: Double) {
        _ = graph.declareHyper("max_iter", Double(maxIter), "L-BFGS iterations per step (per epoch)")
        _ = graph.declareHyper("max_eval", Double(maxEval ?? 0),
                               "L-BFGS loss evaluations per step at most (0: max_iter·5/4, as torch)")
        _ = graph.declareHyper("history_size", Double(history), "L-BFGS curvature pairs kept")
        _ = graph.declareHyper("tolerance_grad", tolGrad, "L-BFGS stops when max |g| ≤ this")
        _ = graph.declareHyper("tolerance_change", tolChange, "L-BFGS stops when the loss or the step changes less")
    }

    /// g + wd·p: L2 regularization folded into the gradient, as torch's `weight_decay`.
    mutating func decayed(_ g: ValueID, _ pv: ValueID, _ wd: ValueID) -> ValueID { named("g_wd", add(g, mul(wd, pv))) }

    mutating func update(_ p: ParamID, value pv: ValueID, grad g0: ValueID, lr: ValueID, spec: OptimizerSpec) {
        let one = const(1)
        switch spec {
        case .sgd(_, let momentum, let nesterov, let wd0, let velocity):
            let mu = momentum > 0 ? hyper("momentum", momentum, "momentum factor μ") : nil
            let g = decayed(g0, pv, hyper("weight_decay", wd0, "L2 weight decay, added to the gradient"))
            guard let mu else {
                add(.assign(.param(p)), [named("p_new", sub(pv, mul(lr, g)))])
                return
            }
            if velocity {                                                       // the lectures' form
                let v = named("velocity", sub(mul(mu, state(.velocity, p)), mul(lr, g)))   // v ← μv − lr·g
                assign(.velocity, p, v)
                let step = nesterov ? named("step", sub(mul(mu, v), mul(lr, g))) : v   // Nesterov: μv − lr·g
                add(.assign(.param(p)), [named("p_new", add(pv, step))])
                return
            }
            let v = named("momentum", add(mul(mu, state(.momentum, p)), g))    // v ← μv + g
            assign(.momentum, p, v)
            let step = nesterov ? named("step", add(g, mul(mu, v))) : v          // Nesterov looks ahead
            add(.assign(.param(p)), [named("p_new", sub(pv, mul(lr, step)))])
        case .adam(_, let b1, let b2, let eps, let wd0, let decoupled, let amsgrad):
            let beta1 = hyper("beta1", b1, "Adam β₁, decay of the first moment")
            let beta2 = hyper("beta2", b2, "Adam β₂, decay of the second moment")
            let epsilon = hyper("eps", eps, "Adam ε, added to the denominator")
            let wd = hyper("weight_decay", wd0, decoupled ? "decoupled weight decay (AdamW): p ← p − lr·wd·p"
                                                          : "L2 weight decay, added to the gradient")
            let t = add(.stepCount, [])
            // Scalars, once per step: step size lr/(1−β₁ᵗ) and 1/√(1−β₂ᵗ), arranged as PyTorch does.
            let stepSize = named("step_size", div(lr, sub(one, pow(beta1, t))))
            let invSqrtBC2 = named("inv_sqrt_bc2", unary(.reciprocal, unary(.sqrt, sub(one, pow(beta2, t)))))
            let g = decoupled ? g0 : decayed(g0, pv, wd)
            let m = named("m", add(mul(beta1, state(.m, p)), mul(sub(one, beta1), g)))   // m ← β₁m + (1−β₁)g
            let v = named("v", add(mul(beta2, state(.v, p)), mul(sub(one, beta2), unary(.square, g))))
            assign(.m, p, m)
            assign(.v, p, v)
            var vUsed = v
            if amsgrad {                                                        // v_max ← max(v_max, v), used for v
                vUsed = named("v_max", add(.binary(.max), [state(.vMax, p), v]))
                assign(.vMax, p, vUsed)
            }
            let denom = named("denom", add(mul(unary(.sqrt, vUsed), invSqrtBC2), epsilon))
            let base = decoupled ? named("p_decayed", mul(pv, sub(one, mul(lr, wd)))) : pv   // AdamW: p ← p(1 − lr·wd) first
            add(.assign(.param(p)), [named("p_new", sub(base, mul(stepSize, div(m, denom))))])
        case .adagrad(_, let lrDecay, let wd0, let eps, let initial):
            let decay = hyper("lr_decay", lrDecay, "AdaGrad learning-rate decay: lr/(1 + (t−1)·lr_decay)")
            let epsilon = hyper("eps", eps, "AdaGrad ε, added to the denominator")
            let s0 = hyper("initial_accumulator_value", initial, "AdaGrad's starting value of the sum of g²")
            let g = decayed(g0, pv, hyper("weight_decay", wd0, "L2 weight decay, added to the gradient"))
            let t = add(.stepCount, [])
            let clr = named("clr", div(lr, add(one, mul(sub(t, one), decay))))
            // The state arena starts at zero, so the first step adds the starting value: s ← s + s₀·[t = 1] + g²,
            // in torch's order ((s₀ + g₁²) + g₂² …); on later steps the added term is exactly 0.
            let first = unary(.step, sub(const(1.5), t))
            let s = named("sum", add(add(state(.sum, p), mul(s0, first)), unary(.square, g)))   // s ← s + g²
            assign(.sum, p, s)
            add(.assign(.param(p)), [named("p_new", sub(pv, mul(clr, div(g, add(unary(.sqrt, s), epsilon)))))])
        case .rmsprop(_, let a, let eps, let wd0, let momentum, let centered):
            let alpha = hyper("alpha", a, "RMSProp smoothing constant α")
            let epsilon = hyper("eps", eps, "RMSProp ε, added to the denominator")
            let mu = momentum > 0 ? hyper("momentum", momentum, "RMSProp momentum factor μ") : nil
            let g = decayed(g0, pv, hyper("weight_decay", wd0, "L2 weight decay, added to the gradient"))
            let v = named("square_avg", add(mul(alpha, state(.squareAvg, p)), mul(sub(one, alpha), unary(.square, g))))
            assign(.squareAvg, p, v)
            var variance = v
            if centered {                                                       // v − (running mean of g)²
                let ga = named("grad_avg", add(mul(alpha, state(.gradAvg, p)), mul(sub(one, alpha), g)))
                assign(.gradAvg, p, ga)
                variance = named("variance", sub(v, unary(.square, ga)))
            }
            let scaled = named("scaled", div(g, add(unary(.sqrt, variance), epsilon)))
            guard let mu else {
                add(.assign(.param(p)), [named("p_new", sub(pv, mul(lr, scaled)))])
                return
            }
            let b = named("buf", add(mul(mu, state(.momentumBuffer, p)), scaled))   // b ← μb + g/(√v + ε)
            assign(.momentumBuffer, p, b)
            add(.assign(.param(p)), [named("p_new", sub(pv, mul(lr, b)))])
        case .lbfgs:
            preconditionFailure("L-BFGS has no per-parameter update: runtime/lbfgs.c runs it")
        }
    }
}
