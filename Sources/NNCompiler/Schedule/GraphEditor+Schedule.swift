import Foundation
import NNIR

/// Learning-rate schedules as graph code: scalar nodes computed once per step from the step or epoch counter
/// and hyperparameters named as in PyTorch, so `--gamma`, `--t-max`, … change them without recompiling.
/// Branches (before/after a milestone, the two OneCycle phases) are blended with 0/1 `step` selectors, and
/// every branch stays finite for any override, so a blend never multiplies inf or NaN by zero.
extension GraphEditor {
    /// η(t) for the config's schedule, with η₀ = hyper "lr" (the trainer's `--lr`, `HP_LR` in the C, which the
    /// runtime finds once as `ctx->lr_hparam`) and t the 0-based step or epoch. A positive `ctx->lr_override`
    /// (the runtime's SWA and snapshot-ensemble rates) takes the schedule's place; either way the selection is
    /// exact: o·1 + η·0 = o, and o·0 + η·1 = η (for a finite η).
    mutating func learningRate(_ config: TrainingConfig) -> ValueID {
        let lr = hyper("lr", config.optimizer.learningRate, "learning rate")
        let t = config.scheduleInterval == .step ? sub(add(.stepCount, []), const(1)) : add(.epochCount, [])
        let scheduled = schedule(config.schedule, t: t, base: lr, unit: config.scheduleInterval)
        let override = add(.lrOverride, [])
        let on = unary(.step, override)
        return add(mul(override, on), mul(scheduled, sub(const(1), on)))
    }

    /// η(t) of `s`; `perEpochLengths`: the case's own lengths count epochs (inside `.epochs`), while t counts
    /// `unit` (steps or epochs).
    mutating func schedule(_ s: ScheduleSpec, t: ValueID, base lr: ValueID, unit: ScheduleInterval = .step,
                           perEpochLengths: Bool = false) -> ValueID {
        let one = const(1)
        /// A length hyperparameter in t's unit: as declared, or, counted in epochs, `<name>_epochs` times the steps
        /// of an epoch when t counts steps.
        func length(_ name: String, _ value: Double, _ help: String) -> ValueID {
            guard perEpochLengths else { return hyper(name, value, help) }
            let epochs = hyper(name + "_epochs", value, help + ", in epochs")
            return unit == .step ? mul(epochs, add(.stepsPerEpoch, [])) : epochs
        }
        switch s {
        case .constant:
            return lr
        case .stepDecay(let k, let gamma):
            let size = length("step_size", Double(k), "schedule: decay every step_size steps or epochs")
            return mul(lr, pow(hyper("gamma", gamma, "schedule: decay factor γ"), unary(.floor, div(t, size))))
        case .multiStep(let milestones, let gamma):
            var passed = const(0)                                   // milestones ≤ t, as t is an integer
            for (i, m) in milestones.enumerated() {
                let mi = length("milestone_\(i + 1)", Double(m), "schedule: milestone \(i + 1) (step or epoch)")
                passed = add(passed, unary(.step, sub(add(t, const(0.5)), mi)))
            }
            return mul(lr, pow(hyper("gamma", gamma, "schedule: decay factor γ"), passed))
        case .exponential(let gamma):
            return mul(lr, pow(hyper("gamma", gamma, "schedule: decay factor γ"), t))
        case .exponentialDecay(let rate):
            return mul(lr, unary(.exp, neg(mul(hyper("decay_rate", rate, "schedule: rate k of e^(−kt)"), t))))
        case .halving(let k):
            let size = length("step_size", Double(k), "schedule: halve every step_size steps or epochs")
            return mul(lr, pow(const(0.5), unary(.floor, div(t, size))))
        case .inverseTime(let rate):
            return div(lr, add(one, mul(hyper("decay_rate", rate, "schedule: rate k of 1/(1+kt)"), t)))
        case .inverseSqrt:
            return div(lr, unary(.sqrt, add(t, one)))
        case .polynomial(let total, let power):
            let T = length("total_iters", Double(total), "schedule: length T of the decay")
            let p = hyper("power", power, "schedule: polynomial power")
            return mul(lr, pow(sub(one, div(minimum(t, T), T)), p))
        case .linear(let total):
            let T = length("total_iters", Double(total), "schedule: length T of the decay")
            return mul(lr, maximum(sub(one, div(t, T)), const(0)))
        case .cosine(let tMax, let etaMin):
            let T = length("t_max", Double(tMax), "schedule: cosine period T_max")
            let low = hyper("eta_min", etaMin, "schedule: minimum learning rate η_min")
            return cosineBetween(lr, low, progress: div(minimum(t, T), T))
        case .cyclic(let maxLR, let stepSize):
            let top = hyper("max_lr", maxLR, "schedule: upper learning rate of the cycle")
            let s = length("step_size_up", Double(stepSize), "schedule: steps from the base to max_lr")
            let cycle = unary(.floor, add(one, div(t, mul(const(2), s))))
            let y = add(sub(div(t, s), mul(const(2), cycle)), one)
            let x = maximum(y, neg(y))                                  // |t/s − 2·cycle + 1|
            return add(lr, mul(sub(top, lr), maximum(sub(one, x), const(0))))
        case .warmRestarts(let t0, let tMult, let etaMin):
            return warmRestarts(t: t, base: lr, t0: length("t_0", Double(t0), "schedule: first restart period T_0"),
                                tMult: hyper("t_mult", tMult, "schedule: period growth T_mult after each restart"),
                                etaMin: hyper("eta_min", etaMin, "schedule: minimum learning rate η_min"))
        case .oneCycle(let total, let pct, let div0, let finalDiv):
            return oneCycle(t: t, top: lr, total: length("total_steps", Double(total), "schedule: OneCycle length"),
                            pct: hyper("pct_start", pct, "schedule: OneCycle fraction spent increasing"),
                            divFactor: hyper("div_factor", div0, "schedule: OneCycle initial lr = lr/div_factor"),
                            finalDiv: hyper("final_div_factor", finalDiv,
                                            "schedule: OneCycle final lr = initial lr/final_div_factor"))
        case .warmup(let w, let then):
            // torch's SequentialLR(LinearLR(1/W, 1, total_iters=W−1), then, milestones=[W]).
            let W = length("warmup", Double(w), "schedule: linear warmup length W (steps or epochs)")
            let main = schedule(then, t: maximum(sub(t, W), const(0)), base: lr, unit: unit)
            return mul(main, minimum(one, div(add(t, one), W)))
        case .epochs(let inner):
            return schedule(inner, t: t, base: lr, unit: unit, perEpochLengths: true)
        }
    }

    mutating func minimum(_ a: ValueID, _ b: ValueID) -> ValueID { add(.binary(.min), [a, b]) }
    mutating func maximum(_ a: ValueID, _ b: ValueID) -> ValueID { add(.binary(.max), [a, b]) }

    /// end + (start − end)·½(1 + cos(π·progress)): `start` at progress 0, `end` at 1.
    mutating func cosineBetween(_ start: ValueID, _ end: ValueID, progress: ValueID) -> ValueID {
        let half = mul(const(0.5), add(const(1), unary(.cos, mul(const(Double.pi), progress))))
        return add(end, mul(sub(start, end), half))
    }

    /// `a` where `select` is 0, `b` where it is 1.
    mutating func blend(_ a: ValueID, _ b: ValueID, _ select: ValueID) -> ValueID { add(a, mul(select, sub(b, a))) }

    /// CosineAnnealingWarmRestarts' closed form: period i has length T_0·T_multⁱ; T_cur is t minus the periods
    /// before it (for T_mult = 1, t mod T_0).
    mutating func warmRestarts(t: ValueID, base lr: ValueID, t0: ValueID, tMult: ValueID, etaMin: ValueID) -> ValueID {
        let one = const(1)
        let growing = unary(.step, sub(tMult, one))                 // 1 when T_mult > 1
        let curFixed = sub(t, mul(t0, unary(.floor, div(t, t0))))
        let tm = add(tMult, sub(one, growing))                      // T_mult, or 2 where that branch is unused
        // n = ⌊log_Tm(t·(Tm−1)/T_0 + 1)⌋; the 1e-9 keeps exact restart points from rounding down.
        let n = unary(.floor, add(div(unary(.log, add(mul(div(t, t0), sub(tm, one)), one)), unary(.log, tm)),
                                  const(1e-9)))
        let tmn = pow(tm, n)
        let curGrowing = sub(t, div(mul(t0, sub(tmn, one)), sub(tm, one)))
        let cur = blend(curFixed, curGrowing, growing), period = blend(t0, mul(t0, tmn), growing)
        return cosineBetween(lr, etaMin, progress: div(cur, period))
    }

    /// OneCycleLR with cosine annealing: from lr/div_factor up to lr until step pct·T − 1, then down to
    /// lr/(div_factor·final_div_factor) at step T − 1.
    mutating func oneCycle(t: ValueID, top: ValueID, total: ValueID, pct: ValueID, divFactor: ValueID,
                           finalDiv: ValueID) -> ValueID {
        let one = const(1)
        let initial = div(top, divFactor), low = div(initial, finalDiv)
        let peak = sub(mul(pct, total), one), end = sub(total, one)
        let up = cosineBetween(initial, top, progress: div(t, peak))
        let down = cosineBetween(top, low, progress: minimum(div(sub(t, peak), sub(end, peak)), one))
        return blend(up, down, unary(.step, sub(t, peak)))
    }
}
