import Foundation
import NNCompiler
import NNIR
import Testing

/// Every learning-rate schedule, lowered to graph code and evaluated by the float64 interpreter, against the
/// NumPy reference's rates for t = 0 … 39 (Tests/Fixtures/optimizers.json, torch.optim.lr_scheduler's
/// recurrences) and against closed forms written out here at the boundaries: the first step, milestones, the
/// warmup end, restarts, the OneCycle peak, the end of the decay. Both float64: |a − e| ≤ max(1e-12·|e|, 1e-15).
@Suite struct ScheduleTests {
    static let rel = 1e-12, abs = 1e-15

    /// The ScheduleSpec of each reference case (Tests/Reference/optim.py `schedule_cases`).
    static func spec(_ name: String, _ p: [String: HParam]) -> ScheduleSpec? {
        let n = { (k: String) in p.number(k) }, i = { (k: String) in Int(p.number(k)) }
        switch name {
        case "constant": return .constant
        case "step": return .stepDecay(every: i("every"), gamma: n("gamma"))
        case "multistep": return .multiStep(milestones: p.list("milestones").map { Int($0) }, gamma: n("gamma"))
        case "exponential": return .exponential(gamma: n("gamma"))
        case "exponential_decay": return .exponentialDecay(rate: n("rate"))
        case "halving": return .halving(every: i("every"))
        case "inverse_time": return .inverseTime(rate: n("rate"))
        case "inverse_sqrt": return .inverseSqrt
        case "polynomial": return .polynomial(totalIters: i("total_iters"), power: n("power"))
        case "linear": return .linear(totalIters: i("total_iters"))
        case "cosine": return .cosine(tMax: i("t_max"), etaMin: n("eta_min"))
        case "cyclic": return .cyclic(maxLR: n("max_lr"), stepSizeUp: i("step_size_up"))
        case "warm_restarts", "warm_restarts_mult": return .warmRestarts(t0: i("t0"), tMult: n("t_mult"), etaMin: n("eta_min"))
        case "one_cycle": return .oneCycle(totalSteps: i("total_steps"), pctStart: n("pct_start"),
                                           divFactor: n("div_factor"), finalDivFactor: n("final_div_factor"))
        case "warmup_cosine": return .warmup(steps: i("warmup"), then: .cosine(tMax: i("t_max"), etaMin: n("eta_min")))
        case "warmup_step": return .warmup(steps: i("warmup"), then: .stepDecay(every: i("every"), gamma: n("gamma")))
        default: return nil
        }
    }

    /// The "lr" output of the update graph of `schedule` (η₀ = 0.1), at counter value t.
    struct Rates {
        var graph: Graph
        init(_ schedule: ScheduleSpec, per interval: ScheduleInterval) throws {
            var g = makeTestGraph("schedule", optimizer: .sgd(learningRate: 0.1, momentum: 0, nesterov: false))
            g.config.schedule = schedule
            g.config.scheduleInterval = interval
            graph = g.withOptimizerUpdate()
            try graph.verify()
        }
        /// Per step, t is step − 1; per epoch, t is the epoch whatever the step (here 1000·t + 7).
        func at(_ t: Int, hypers: [String: Double] = [:], stepsPerEpoch: Int = 1) throws -> Double {
            let perStep = graph.config.scheduleInterval == .step
            let v = try graph.evaluate(inputs: [:], params: [:], hypers: hypers, step: perStep ? t + 1 : 1000 * t + 7,
                                       epoch: perStep ? 0 : t, stepsPerEpoch: stepsPerEpoch)
            return v[graph.outputs["lr"]!]!.scalar
        }
    }

    static let names = OptimizerFixture.shared.map { $0.schedules.keys.sorted() } ?? []

    @Test func fixtureCoversEverySchedule() throws {
        let f = try OptimizerFixture.load()
        let specs = f.schedules.compactMap { Self.spec($0.key, $0.value.params) }
        #expect(specs.count == f.schedules.count, "a reference schedule has no ScheduleSpec here")
        let kinds = Set(specs.map { $0.name.split(separator: "+").last.map(String.init) ?? "" })
        #expect(kinds.count == 14, "every ScheduleSpec case but warmup is a reference case: \(kinds.sorted())")
        #expect(f.base_lr == 0.1)
    }

    @Test(arguments: names, [ScheduleInterval.step, .epoch])
    func ratesMatchReference(_ name: String, _ interval: ScheduleInterval) throws {
        let s = try #require(OptimizerFixture.shared?.schedules[name])
        let rates = try Rates(try #require(Self.spec(name, s.params)), per: interval)
        for (t, e) in s.lr.enumerated() {
            let got = try rates.at(t)
            #expect(Swift.abs(got - e) <= Swift.max(Self.rel * Swift.abs(e), Self.abs),
                    "\(name) per \(interval.rawValue) at t = \(t): \(got), reference \(e)")
        }
    }

    /// Closed forms at each schedule's boundaries, written independently of both the lowering and the reference.
    @Test func boundariesMatchClosedForms() throws {
        let pi = Double.pi
        let cases: [(ScheduleSpec, [(Int, Double)])] = [
            (.stepDecay(every: 7, gamma: 0.5), [(0, 0.1), (6, 0.1), (7, 0.05), (14, 0.025)]),
            (.multiStep(milestones: [5, 12, 30], gamma: 0.1), [(0, 0.1), (4, 0.1), (5, 0.01), (11, 0.01), (12, 0.001), (30, 1e-4)]),
            (.exponential(gamma: 0.9), [(0, 0.1), (1, 0.09), (10, 0.1 * Foundation.pow(0.9, 10))]),
            (.exponentialDecay(rate: 0.05), [(0, 0.1), (20, 0.1 * Foundation.exp(-1))]),
            (.halving(every: 10), [(9, 0.1), (10, 0.05), (20, 0.025)]),
            (.inverseTime(rate: 0.2), [(0, 0.1), (5, 0.05)]),
            (.inverseSqrt, [(0, 0.1), (3, 0.05), (99, 0.01)]),
            (.polynomial(totalIters: 25, power: 2), [(0, 0.1), (5, 0.1 * 0.64), (25, 0), (30, 0)]),
            (.linear(totalIters: 30), [(0, 0.1), (15, 0.05), (30, 0), (35, 0)]),
            (.cosine(tMax: 30, etaMin: 0.001), [(0, 0.1), (15, 0.0505), (30, 0.001), (39, 0.001)]),
            (.cyclic(maxLR: 0.5, stepSizeUp: 6), [(0, 0.1), (3, 0.3), (6, 0.5), (9, 0.3), (12, 0.1), (18, 0.5)]),
            (.warmRestarts(t0: 5, tMult: 1, etaMin: 0.01),
             [(0, 0.1), (4, 0.01 + 0.09 * (1 + cos(4 * pi / 5)) / 2), (5, 0.1), (10, 0.1)]),
            (.warmRestarts(t0: 3, tMult: 2, etaMin: 0), [(0, 0.1), (3, 0.1), (6, 0.05), (9, 0.1), (21, 0.1), (20, 0.1 * (1 + cos(11 * pi / 12)) / 2)]),
            (.oneCycle(totalSteps: 40, pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4),
             [(0, 0.004), (11, 0.1), (39, 0.004 / 1e4)]),
            (.warmup(steps: 5, then: .cosine(tMax: 30, etaMin: 0)), [(0, 0.02), (3, 0.08), (4, 0.1), (5, 0.1), (20, 0.05), (35, 0)]),
            (.warmup(steps: 4, then: .constant), [(0, 0.025), (3, 0.1), (100, 0.1)]),
        ]
        for (spec, points) in cases {
            let rates = try Rates(spec, per: .step)
            for (t, e) in points {
                let got = try rates.at(t)
                #expect(Swift.abs(got - e) <= Swift.max(1e-12 * Swift.abs(e), 1e-15), "\(spec.name) at t = \(t): \(got), expected \(e)")
            }
        }
    }

    /// Lengths in epochs (`.cosine(epochs:)`, `.warmup(epochs:then:)`, …): per step each is epochs × the run's steps
    /// per epoch (here 7, as ⌈N/B⌉ of a run would give), so the rates equal the step schedule of those lengths in
    /// closed form; per epoch they are the epochs themselves. Their hyperparameters end in `_epochs`.
    @Test func lengthsInEpochsScaleWithTheStepsOfAnEpoch() throws {
        let pi = Double.pi, spe = 7
        let cases: [(ScheduleSpec, [(Int, Double)])] = [
            (.epochs(.cosine(tMax: 3, etaMin: 0.001)), [(0, 0.1), (7, 0.001 + 0.099 * (1 + cos(pi / 3)) / 2), (21, 0.001), (30, 0.001)]),
            (.epochs(.warmup(steps: 2, then: .epochs(.cosine(tMax: 4, etaMin: 0)))),   // W = 14 steps, then T = 28
             [(0, 0.1 / 14), (6, 0.1 * 7 / 14), (13, 0.1), (14 + 7, 0.1 * (1 + cos(pi / 4)) / 2), (14 + 28, 0)]),
            (.epochs(.warmup(steps: 1, then: .cosine(tMax: 10, etaMin: 0))),            // W = 7 steps, T = 10 steps
             [(3, 0.1 * 4 / 7), (7 + 5, 0.05), (17, 0)]),
            (.epochs(.stepDecay(every: 2, gamma: 0.5)), [(13, 0.1), (14, 0.05), (28, 0.025)]),
            (.epochs(.multiStep(milestones: [1, 3], gamma: 0.1)), [(6, 0.1), (7, 0.01), (20, 0.01), (21, 0.001)]),
            (.epochs(.linear(totalIters: 2)), [(0, 0.1), (7, 0.05), (14, 0)]),
            (.epochs(.polynomial(totalIters: 2, power: 2)), [(7, 0.025), (14, 0)]),
            (.epochs(.halving(every: 1)), [(6, 0.1), (7, 0.05), (14, 0.025)]),
            (.epochs(.warmRestarts(t0: 1, tMult: 2, etaMin: 0)), [(0, 0.1), (7, 0.1), (14, 0.05), (21, 0.1)]),
            (.epochs(.oneCycle(totalSteps: 2, pctStart: 0.5, divFactor: 25, finalDivFactor: 1e4)), [(0, 0.004), (6, 0.1), (13, 0.004 / 1e4)]),
        ]
        for (spec, points) in cases {
            let rates = try Rates(spec, per: .step)
            for (t, e) in points {
                let got = try rates.at(t, stepsPerEpoch: spe)
                #expect(Swift.abs(got - e) <= Swift.max(1e-12 * Swift.abs(e), 1e-15), "\(spec.name) at t = \(t): \(got), expected \(e)")
            }
        }
        let cosine = try Rates(.epochs(.cosine(tMax: 3, etaMin: 0)), per: .step)
        #expect(cosine.graph.hyper(named: "t_max_epochs")?.value == 3 && cosine.graph.hyper(named: "t_max") == nil)
        #expect(Swift.abs(try cosine.at(7, hypers: ["t_max_epochs": 2], stepsPerEpoch: 7) - 0.05) < 1e-15, "--t-max-epochs 2")
        #expect(Swift.abs(try cosine.at(14, hypers: ["t_max_epochs": 2], stepsPerEpoch: 14) - 0.05) < 1e-15, "other data: 14 steps an epoch")
        let warm = try Rates(.epochs(.warmup(steps: 2, then: .constant)), per: .step)
        #expect(Swift.abs(try warm.at(3, hypers: ["warmup_epochs": 0.5], stepsPerEpoch: 8) - 0.1) < 1e-15, "--warmup-epochs 0.5: 4 steps")
        #expect(Swift.abs(try warm.at(2, hypers: ["warmup_epochs": 0.5], stepsPerEpoch: 8) - 0.075) < 1e-15)
        let perEpoch = try Rates(.epochs(.cosine(tMax: 4, etaMin: 0)), per: .epoch)
        #expect(Swift.abs(try perEpoch.at(2, stepsPerEpoch: 9) - 0.05) < 1e-15, "per epoch, epochs are the counter's own unit")
    }

    /// Hyperparameter overrides (the trainer's --t-max, --gamma, …) reach the rate.
    @Test func overridesChangeTheRate() throws {
        let cosine = try Rates(.cosine(tMax: 30, etaMin: 0), per: .epoch)
        #expect(Swift.abs(try cosine.at(10, hypers: ["t_max": 20]) - 0.05) < 1e-15)
        let step = try Rates(.stepDecay(every: 7, gamma: 0.5), per: .step)
        #expect(Swift.abs(try step.at(7, hypers: ["gamma": 0.2, "lr": 1]) - 0.2) < 1e-15)
        let sgdr = try Rates(.warmRestarts(t0: 5, tMult: 1, etaMin: 0), per: .step)
        #expect(Swift.abs(try sgdr.at(15, hypers: ["t_mult": 2]) - 0.1) < 1e-15, "restart at 5 + 10 with T_mult 2")
        let warm = try Rates(.warmup(steps: 5, then: .constant), per: .step)
        #expect(try warm.at(0, hypers: ["warmup": 0]) == 0.1, "--warmup 0 turns the warmup off")
    }
}
