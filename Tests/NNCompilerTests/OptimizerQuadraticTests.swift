import Foundation
import NNCompiler
import NNIR
import Testing

/// Tests/Fixtures/optimizers.json, written by the NumPy reference (Tests/Reference/optim.py).
struct OptimizerFixture: Decodable, Sendable {
    struct Quadratic: Decodable, Sendable {
        struct Run: Decodable, Sendable {
            var kind: String
            var hparams: [String: HParam]
            var iterates: [[Double]]
        }
        var w0: [Double], a: [Double], c: [Double]
        var steps: Int
        var runs: [String: Run]
    }
    struct Schedule: Decodable, Sendable {
        var params: [String: HParam]
        var lr: [Double]
    }
    var quadratic: Quadratic
    var base_lr: Double
    var schedules: [String: Schedule]

    static let url = Paths.fixtures.appendingPathComponent("optimizers.json")
    static func load() throws -> OptimizerFixture { try JSONDecoder().decode(Self.self, from: Data(contentsOf: url)) }
    static let shared: OptimizerFixture? = try? load()
}

/// A reference hyperparameter: a number, a flag or a list of numbers (milestones, betas).
enum HParam: Decodable, Sendable {
    case number(Double), flag(Bool), list([Double]), text(String)
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .flag(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let l = try? c.decode([Double].self) { self = .list(l) }
        else { self = .text(try c.decode(String.self)) }
    }
}

extension [String: HParam] {
    func number(_ k: String, _ fallback: Double = 0) -> Double { if case .number(let v)? = self[k] { v } else { fallback } }
    func flag(_ k: String) -> Bool { if case .flag(let v)? = self[k] { v } else { false } }
    func list(_ k: String) -> [Double] { if case .list(let v)? = self[k] { v } else { [] } }
}

/// The OptimizerSpec of a reference run (torch.optim's argument names).
func optimizerSpec(kind: String, _ hp: [String: HParam]) -> OptimizerSpec? {
    let (lr, wd) = (hp.number("lr"), hp.number("weight_decay"))
    switch kind {
    case "sgd": return .sgd(learningRate: lr, momentum: hp.number("momentum"), nesterov: hp.flag("nesterov"),
                            weightDecay: wd, velocity: hp.flag("velocity"))
    case "adam", "adamw":
        let b = hp.list("betas")
        return .adam(learningRate: lr, beta1: b[0], beta2: b[1], eps: hp.number("eps"), weightDecay: wd,
                     decoupled: kind == "adamw", amsgrad: hp.flag("amsgrad"))
    case "adagrad": return .adagrad(learningRate: lr, lrDecay: hp.number("lr_decay"), weightDecay: wd, eps: hp.number("eps"),
                                    initialAccumulator: hp.number("initial_accumulator_value"))
    case "rmsprop": return .rmsprop(learningRate: lr, alpha: hp.number("alpha"), eps: hp.number("eps"), weightDecay: wd,
                                    momentum: hp.number("momentum"), centered: hp.flag("centered"))
    default: return nil
    }
}

/// Every optimizer for N steps on f(w) = Σ c·(w − a)², through the update graph in the float64 interpreter
/// with its state carried from step to step, against the NumPy reference's iterates. Both sides are float64
/// and order their arithmetic differently: |a − e| ≤ max(1e-10·|e|, 1e-12).
@Suite struct OptimizerQuadraticTests {
    static let names = OptimizerFixture.shared.map { $0.quadratic.runs.keys.sorted() } ?? []

    @Test func fixtureCoversEveryOptimizer() throws {
        let q = try OptimizerFixture.load().quadratic
        let specs = q.runs.values.compactMap { optimizerSpec(kind: $0.kind, $0.hparams) }
        #expect(specs.count == q.runs.count)
        let covered = Set(specs.map(\.name))
        for name in ["sgd", "sgd_momentum", "sgd_nesterov", "sgd_momentum_velocity", "sgd_nesterov_velocity", "adam",
                     "adamw", "adam_amsgrad", "adamw_amsgrad", "adagrad", "rmsprop", "rmsprop_centered_momentum"] {
            #expect(covered.contains(name), "no quadratic reference run for \(name)")
        }
        #expect(specs.contains { $0.weightDecay > 0 && $0.name == "adam" }, "Adam with L2 weight decay")
    }

    @Test(arguments: names)
    func iteratesMatchReference(_ name: String) throws {
        let q = try OptimizerFixture.load().quadratic
        let run = try #require(q.runs[name])
        let spec = try #require(optimizerSpec(kind: run.kind, run.hparams))
        var graph = makeTestGraph("quadratic", optimizer: spec)
        let w = try graph.addParam("w", [4])
        let a = try graph.addParam("a", [4], trainable: false), c = try graph.addParam("c", [4], trainable: false)
        let diff = try graph.add(.binary(.sub), [w, a])
        graph.outputs[.loss] = try graph.add(.sumAll, [graph.add(.binary(.mul), [c, graph.add(.unary(.square), [diff])])])
        let updated = try graph.differentiated().withOptimizerUpdate()
        try updated.verify()

        let vec = { (v: [Double]) in Tensor64(shape: [4], data: v) }
        var params = ["w": vec(q.w0), "a": vec(q.a), "c": vec(q.c)]
        var state: [StateID: Tensor64] = [:]
        for (t, expected) in q.iterates(name).enumerated() {
            let written = updated.assignments(try updated.evaluate(inputs: [:], params: params, state: state, step: t + 1))
            for (k, v) in written {
                switch k {
                case .param(let p): params[updated[p].name] = v
                case .state(let s): state[s] = v
                }
            }
            expectClose(params["w"], vec(expected), rel: 1e-10, abs: 1e-12, "\(name) after step \(t + 1)")
        }
        #expect(Set(state.keys) == Set(spec.stateSlots.map { StateID($0, of: updated.paramID(named: "w")!) }))
    }
}

extension OptimizerFixture.Quadratic {
    func iterates(_ name: String) -> [[Double]] { runs[name]?.iterates ?? [] }
}
