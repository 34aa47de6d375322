/// A learning-rate schedule: η(t) from the optimizer's learning rate η₀ and the counter t, the 0-based index
/// of the step (`schedulePer: .step`, the default) or of the epoch (`schedulePer: .epoch`, where the rate
/// during epoch e is η(e), as when PyTorch's `scheduler.step()` is called once per epoch).
/// Lengths (k, T, milestones, …) count in the same unit, or in epochs with the `epochs:` forms below. Every number is a default the trainer's command
/// line can override, under PyTorch's parameter name (`--gamma`, `--t-max`, `--eta-min`, `--warmup`, …).
///
/// ```swift
/// train(model, input: 784, loss: .crossEntropy, optimizer: AdamW(learningRate: 1e-3),
///       schedule: .warmup(2, then: .cosine(tMax: 13)), schedulePer: .epoch, epochs: 15)
/// ```
public struct LRSchedule {
    public let spec: ScheduleSpec

    /// η₀ throughout.
    public static var constant: LRSchedule { LRSchedule(spec: .constant) }
    /// η₀/√(t + 1).
    public static var inverseSqrt: LRSchedule { LRSchedule(spec: .inverseSqrt) }

    /// η₀·γ^⌊t/k⌋ (`StepLR(step_size=k, gamma)`).
    public static func stepDecay(every k: Int, gamma: Double = 0.1,
                                 file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        let s = site(file, line, column)
        positive("stepDecay every", k, s); factor("stepDecay gamma", gamma, s)
        return LRSchedule(spec: .stepDecay(every: k, gamma: gamma))
    }

    /// η₀·γ^(number of milestones ≤ t) (`MultiStepLR`).
    public static func multiStep(milestones: [Int], gamma: Double = 0.1,
                                 file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        let s = site(file, line, column)
        if milestones.isEmpty { fail("multiStep needs at least one milestone", at: s) }
        if zip(milestones, milestones.dropFirst()).contains(where: { $0 >= $1 }) || milestones[0] < 1 {
            fail("multiStep milestones must be positive and increasing, got \(milestones)", at: s)
        }
        factor("multiStep gamma", gamma, s)
        return LRSchedule(spec: .multiStep(milestones: milestones, gamma: gamma))
    }

    /// η₀·γ^t (`ExponentialLR`).
    public static func exponential(gamma: Double,
                                   file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        factor("exponential gamma", gamma, site(file, line, column))
        return LRSchedule(spec: .exponential(gamma: gamma))
    }

    /// η₀·e^(−kt).
    public static func exponentialDecay(rate k: Double,
                                        file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        nonNegative("exponentialDecay rate", k, site(file, line, column))
        return LRSchedule(spec: .exponentialDecay(rate: k))
    }

    /// η₀·½^⌊t/k⌋: halved every k.
    public static func halving(every k: Int,
                               file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        positive("halving every", k, site(file, line, column))
        return LRSchedule(spec: .halving(every: k))
    }

    /// η₀/(1 + kt).
    public static func inverseTime(rate k: Double,
                                   file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        nonNegative("inverseTime rate", k, site(file, line, column))
        return LRSchedule(spec: .inverseTime(rate: k))
    }

    /// η₀·(1 − min(t, T)/T)^power (`PolynomialLR(total_iters=T, power)`).
    public static func polynomial(totalIters T: Int, power: Double = 1,
                                  file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        let s = site(file, line, column)
        positive("polynomial totalIters", T, s); nonNegative("polynomial power", power, s)
        return LRSchedule(spec: .polynomial(totalIters: T, power: power))
    }

    /// η₀·max(0, 1 − t/T): linear decay to zero at T.
    public static func linear(totalIters T: Int,
                              file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        positive("linear totalIters", T, site(file, line, column))
        return LRSchedule(spec: .linear(totalIters: T))
    }

    /// η_min + (η₀ − η_min)·½(1 + cos(π·min(t, T)/T)) (`CosineAnnealingLR(T_max=T, eta_min)`, then held at η_min).
    public static func cosine(tMax T: Int, etaMin: Double = 0,
                              file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        let s = site(file, line, column)
        positive("cosine tMax", T, s); nonNegative("cosine etaMin", etaMin, s)
        return LRSchedule(spec: .cosine(tMax: T, etaMin: etaMin))
    }

    /// `CyclicLR(base_lr=η₀, max_lr, step_size_up, mode='triangular')`: up from η₀ to maxLR in stepSizeUp,
    /// back down in as many, repeated.
    public static func cyclic(maxLR: Double, stepSizeUp: Int = 2000,
                              file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        let s = site(file, line, column)
        positive("cyclic stepSizeUp", stepSizeUp, s)
        if !(maxLR > 0) { fail("cyclic maxLR must be positive, got \(maxLR)", at: s) }
        return LRSchedule(spec: .cyclic(maxLR: maxLR, stepSizeUp: stepSizeUp))
    }

    /// SGDR, `CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)`: cosine from η₀ to η_min over T_0, then
    /// restarts with periods T_0·T_mult, T_0·T_mult², …
    public static func warmRestarts(t0: Int, tMult: Int = 1, etaMin: Double = 0,
                                    file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        let s = site(file, line, column)
        positive("warmRestarts t0", t0, s); positive("warmRestarts tMult", tMult, s)
        nonNegative("warmRestarts etaMin", etaMin, s)
        return LRSchedule(spec: .warmRestarts(t0: t0, tMult: Double(tMult), etaMin: etaMin))
    }

    /// `OneCycleLR(max_lr=η₀, total_steps, pct_start, anneal_strategy='cos', div_factor, final_div_factor)`:
    /// cosine from η₀/divFactor up to η₀ until step pct·T − 1, then down to η₀/(divFactor·finalDivFactor).
    public static func oneCycle(totalSteps T: Int, pctStart: Double = 0.3, divFactor: Double = 25,
                                finalDivFactor: Double = 1e4,
                                file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        let s = site(file, line, column)
        if T < 2 { fail("oneCycle totalSteps must be at least 2, got \(T)", at: s) }
        if !(pctStart * Double(T) > 1 && pctStart < 1) {
            fail("oneCycle pctStart must be in (1/totalSteps, 1), got \(pctStart)", at: s)
        }
        if !(divFactor > 0 && finalDivFactor > 0) { fail("oneCycle divFactor and finalDivFactor must be positive", at: s) }
        return LRSchedule(spec: .oneCycle(totalSteps: T, pctStart: pctStart, divFactor: divFactor,
                                          finalDivFactor: finalDivFactor))
    }

    /// Linear warmup over the first `w` steps (or epochs), then `then` from its start: the rate is
    /// min(1, (t+1)/w)·then(max(t − w, 0)), i.e. `SequentialLR([LinearLR(1/w, 1, w−1), then], milestones=[w])`.
    public static func warmup(_ w: Int, then: LRSchedule = .constant,
                              file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        let s = site(file, line, column)
        positive("warmup length", w, s)
        if then.isWarmup { fail("warmup(…, then: .warmup(…)): one warmup per schedule", at: s) }
        return LRSchedule(spec: .warmup(steps: w, then: then.spec))
    }

    var isWarmup: Bool {
        switch spec {
        case .warmup, .epochs(.warmup): return true
        default: return false
        }
    }
}

/// Lengths in epochs: the same schedules with their lengths counted in epochs, so that a schedule fits the run
/// whatever the data size and batch. Per step (`schedulePer: .step`), each length is its epochs times the
/// run's steps per epoch, ⌈N/B⌉ for the N training samples (after a validation split) and batch B, worked out
/// at run time; per epoch, it is the epochs themselves. The trainer's flags for them end in `-epochs` and take
/// fractions (`--warmup-epochs 0.5`).
///
/// ```swift
/// train(model, input: 4, loss: .crossEntropy, optimizer: Adam(learningRate: 1e-2),
///       schedule: .warmup(epochs: 2, then: .cosine(epochs: 18)), epochs: 20)
/// ```
extension LRSchedule {
    /// `cosine(tMax:etaMin:)` over `epochs` epochs (`--t-max-epochs`, `--eta-min`).
    public static func cosine(epochs T: Int, etaMin: Double = 0,
                              file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        cosine(tMax: T, etaMin: etaMin, file: file, line: line, column: column).inEpochs
    }

    /// `linear(totalIters:)` to zero after `epochs` epochs (`--total-iters-epochs`).
    public static func linear(epochs T: Int, file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        linear(totalIters: T, file: file, line: line, column: column).inEpochs
    }

    /// `polynomial(totalIters:power:)` over `epochs` epochs (`--total-iters-epochs`, `--power`).
    public static func polynomial(epochs T: Int, power: Double = 1,
                                  file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        polynomial(totalIters: T, power: power, file: file, line: line, column: column).inEpochs
    }

    /// `stepDecay(every:gamma:)` every k epochs (`--step-size-epochs`, `--gamma`).
    public static func stepDecay(everyEpochs k: Int, gamma: Double = 0.1,
                                 file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        stepDecay(every: k, gamma: gamma, file: file, line: line, column: column).inEpochs
    }

    /// `halving(every:)` every k epochs (`--step-size-epochs`).
    public static func halving(everyEpochs k: Int, file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        halving(every: k, file: file, line: line, column: column).inEpochs
    }

    /// `multiStep(milestones:gamma:)` with the milestones in epochs (`--milestone-1-epochs`, …).
    public static func multiStep(milestoneEpochs m: [Int], gamma: Double = 0.1,
                                 file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        multiStep(milestones: m, gamma: gamma, file: file, line: line, column: column).inEpochs
    }

    /// `warmRestarts(t0:tMult:etaMin:)` with the first period T_0 in epochs (`--t-0-epochs`).
    public static func warmRestarts(t0Epochs t0: Int, tMult: Int = 1, etaMin: Double = 0,
                                    file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        warmRestarts(t0: t0, tMult: tMult, etaMin: etaMin, file: file, line: line, column: column).inEpochs
    }

    /// `oneCycle(totalSteps:…)` over `epochs` epochs (`--total-steps-epochs`); pctStart only needs to be in (0, 1),
    /// since an epoch has at least one step.
    public static func oneCycle(epochs T: Int, pctStart: Double = 0.3, divFactor: Double = 25, finalDivFactor: Double = 1e4,
                                file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        let s = site(file, line, column)
        positive("oneCycle epochs", T, s)
        if !(pctStart > 0 && pctStart < 1) { fail("oneCycle pctStart must be in (0, 1), got \(pctStart)", at: s) }
        if !(divFactor > 0 && finalDivFactor > 0) { fail("oneCycle divFactor and finalDivFactor must be positive", at: s) }
        return LRSchedule(spec: .epochs(.oneCycle(totalSteps: T, pctStart: pctStart, divFactor: divFactor,
                                                  finalDivFactor: finalDivFactor)))
    }

    /// `warmup(_:then:)` over the first `epochs` epochs (`--warmup-epochs`; 0 turns it off); `then` keeps its own
    /// unit (`.cosine(epochs:)` or `.cosine(tMax:)`).
    public static func warmup(epochs w: Int, then: LRSchedule = .constant,
                              file: String = #filePath, line: Int = #line, column: Int = #column) -> LRSchedule {
        let warm = warmup(w, then: then, file: file, line: line, column: column)
        return LRSchedule(spec: .epochs(warm.spec))
    }

    private var inEpochs: LRSchedule { LRSchedule(spec: .epochs(spec)) }
}

/// What the schedule's counter t counts.
public enum ScheduleStep: Sendable {
    /// t is the 0-based step: a new rate every step.
    case step
    /// t is the 0-based epoch: one rate per epoch.
    case epoch

    var interval: ScheduleInterval { self == .step ? .step : .epoch }
}

private func positive(_ what: String, _ v: Int, _ s: SourceSite) {
    if v < 1 { fail("\(what) must be at least 1, got \(v)", at: s) }
}
private func nonNegative(_ what: String, _ v: Double, _ s: SourceSite) {
    if !(v >= 0) { fail("\(what) must be non-negative, got \(v)", at: s) }
}
private func factor(_ what: String, _ v: Double, _ s: SourceSite) {
    if !(v > 0) { fail("\(what) must be positive, got \(v)", at: s) }
}
