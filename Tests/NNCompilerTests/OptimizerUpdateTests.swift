import Foundation
import NNCompiler
import NNIR
import Testing

/// The update graphs from `withOptimizerUpdate()`, evaluated in float64, against PyTorch's one-step formulas
/// written out in closed form. The graph arranges Adam's arithmetic differently, so values agree to rounding:
/// |a − e| ≤ max(1e-12·|e|, 1e-15).
@Suite struct OptimizerUpdateTests {
    static let rel = 1e-12, abs = 1e-15

    struct Case: Sendable, CustomTestStringConvertible {
        var spec: OptimizerSpec
        var step: Int
        /// Start from random optimizer state rather than the zeros of the first step.
        var warm: Bool
        /// Overrides of the declared hyperparameters, as `--lr` etc. on the trainer's command line.
        var hypers: [String: Double] = [:]
        var testDescription: String {
            "\(spec.name) step \(step)" + (warm ? " warm" : "") + (hypers.isEmpty ? "" : " \(hypers)")
        }
    }

    static let cases: [Case] = [
        Case(spec: .sgd(learningRate: 0.1, momentum: 0, nesterov: false), step: 1, warm: false),
        Case(spec: .sgd(learningRate: 0.1, momentum: 0, nesterov: false), step: 4, warm: false, hypers: ["lr": 0.03]),
        Case(spec: .sgd(learningRate: 0.05, momentum: 0.9, nesterov: false), step: 1, warm: false),
        Case(spec: .sgd(learningRate: 0.05, momentum: 0.9, nesterov: false), step: 7, warm: true),
        Case(spec: .sgd(learningRate: 0.05, momentum: 0.9, nesterov: true), step: 1, warm: false),
        Case(spec: .sgd(learningRate: 0.05, momentum: 0.9, nesterov: true), step: 3, warm: true,
             hypers: ["momentum": 0.5]),
        Case(spec: .adam(learningRate: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8), step: 1, warm: false),
        Case(spec: .adam(learningRate: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8), step: 5, warm: true),
        Case(spec: .adam(learningRate: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8), step: 12, warm: true,
             hypers: ["lr": 0.002, "beta1": 0.8, "beta2": 0.99, "eps": 1e-3]),
        // AMSGrad from warm state: v_max drawn from [0, 0.5], so some elements keep it and others take the new v
        Case(spec: .adam(learningRate: 0.01, beta1: 0.9, beta2: 0.9, eps: 1e-8, amsgrad: true), step: 1, warm: false),
        Case(spec: .adam(learningRate: 0.01, beta1: 0.9, beta2: 0.9, eps: 1e-8, amsgrad: true), step: 6, warm: true),
    ]

    @Test(arguments: cases)
    func oneStepMatchesClosedForm(_ c: Case) throws {
        // loss = Σ c·w², so g = 2·c·w.
        var graph = makeTestGraph("update", optimizer: c.spec)
        let w = try graph.addParam("w", [4])
        let k = try graph.addParam("c", [4], trainable: false)
        graph.outputs[.loss] = try graph.add(.sumAll, [graph.add(.binary(.mul), [k, graph.add(.unary(.square), [w])])])
        let updated = try graph.differentiated().withOptimizerUpdate()
        try updated.verify()

        var rng = TestRandom(seed: UInt64(c.step))
        let p = rng.tensor([4], -1, 1), coef = rng.tensor([4], 0.5, 2)
        let slots = c.spec.stateSlots.map { StateID($0, of: updated.paramID(named: "w")!) }
        var state: [String: Tensor64] = [:]   // by the dumps' names, "m[w]"
        if c.warm {
            for s in slots { state[updated.name(of: s)] = rng.tensor([4], s.slot.rawValue.hasPrefix("v") ? 0 : -0.5, 0.5) }
        }
        let bound = Dictionary(uniqueKeysWithValues: slots.compactMap { s in state[updated.name(of: s)].map { (s, $0) } })
        let values = try updated.evaluate(inputs: [:], params: ["w": p, "c": coef], state: bound, hypers: c.hypers,
                                          step: c.step)
        let written = Dictionary(uniqueKeysWithValues: updated.assignments(values).map { (updated.name(of: $0.key), $0.value) })
        #expect(Set(written.keys) == Set(["w"] + slots.map { updated.name(of: $0) }))

        let g = zip(p.data, coef.data).map { 2 * $1 * $0 }
        expectClose(values[updated.gradient(of: updated.paramID(named: "w")!)!], Tensor64(shape: [4], data: g), rel: Self.rel, abs: Self.abs,
                    "gradient")
        let hyper = { (name: String) in c.hypers[name] ?? updated.hyper(named: name)!.value }
        #expect(values[updated.outputs[.learningRate]!]?.scalar == hyper("lr"))

        let zeros = [Double](repeating: 0, count: 4)
        let (lr, t) = (hyper("lr"), Double(c.step))
        var expected: [String: [Double]] = [:]
        switch c.spec {
        case .sgd(_, let mu0, let nesterov, _, _):
            guard mu0 > 0 else { expected["w"] = (0..<4).map { p.data[$0] - lr * g[$0] }; break }
            let mu = hyper("momentum"), b0 = state["momentum[w]"]?.data ?? zeros
            let b = (0..<4).map { mu * b0[$0] + g[$0] }
            expected["momentum[w]"] = b
            expected["w"] = (0..<4).map { p.data[$0] - lr * (nesterov ? g[$0] + mu * b[$0] : b[$0]) }
        case .adam(_, _, _, _, _, _, let amsgrad):
            let (b1, b2, eps) = (hyper("beta1"), hyper("beta2"), hyper("eps"))
            let (m0, v0) = (state["m[w]"]?.data ?? zeros, state["v[w]"]?.data ?? zeros)
            let m = (0..<4).map { b1 * m0[$0] + (1 - b1) * g[$0] }
            let v = (0..<4).map { b2 * v0[$0] + (1 - b2) * g[$0] * g[$0] }
            expected["m[w]"] = m
            expected["v[w]"] = v
            var vUsed = v
            if amsgrad {  // torch: max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq), then the usual denominator
                let vMax0 = state["v_max[w]"]?.data ?? zeros
                vUsed = (0..<4).map { Swift.max(vMax0[$0], v[$0]) }
                expected["v_max[w]"] = vUsed
                if c.warm { #expect(zip(vMax0, v).contains { $0 > $1 } && zip(vMax0, v).contains { $0 < $1 }, "both cases") }
            }
            expected["w"] = (0..<4).map {
                let (mHat, vHat) = (m[$0] / (1 - Foundation.pow(b1, t)), vUsed[$0] / (1 - Foundation.pow(b2, t)))
                return p.data[$0] - lr * mHat / (vHat.squareRoot() + eps)
            }
        default:
            Issue.record("no closed form for \(c.spec.name) here; OptimizerQuadraticTests covers it")
        }
        for (name, e) in expected {
            expectClose(written[name], Tensor64(shape: [4], data: e), rel: Self.rel, abs: Self.abs,
                        "\(c.testDescription): \(name)")
        }
    }
}
