import Foundation
import Testing
@testable import NNCompiler
import NNIR

/// Each initializer of the DSL resolves to the distribution of its closed form, for fan_in 10 and fan_out 20.
@Suite struct InitTests {
    @Test func initializersMatchTheirClosedForms() throws {
        let dir = Paths.tempDir("init")
        let inits = [".pytorchDefault", ".zeros", ".constant(0.5)", ".uniform(-2, 3)", ".normal(mean: 1, std: 0.1)",
                     ".xavierUniform", ".xavierNormal", ".kaimingUniform", ".kaimingNormal", ".kaimingNormal(gain: 1)"]
        let layers = inits.map { "Linear(10, 20, weightInit: \($0), biasInit: \($0)); Linear(20, 10)" }.joined(separator: "; ")
        let model = try writeModel("inits", """
            import NNDSL
            train(Sequential { \(layers) }, input: 10, loss: .mse, optimizer: SGD(learningRate: 0.1))
            """, in: dir)
        let graph = try Driver(tools: try Paths.toolchain()).evaluate(model.path)
        let (fi, fo) = (10.0, 20.0)
        let want: [Initializer] = [
            .uniform(-1 / fi.squareRoot(), 1 / fi.squareRoot()), .zeros, .constant(0.5), .uniform(-2, 3),
            .normal(mean: 1, std: 0.1),
            .uniform(-(6 / (fi + fo)).squareRoot(), (6 / (fi + fo)).squareRoot()),
            .normal(mean: 0, std: (2 / (fi + fo)).squareRoot()),
            .uniform(-(6 / fi).squareRoot(), (6 / fi).squareRoot()),      // √2·√(3/fan_in)
            .normal(mean: 0, std: (2 / fi).squareRoot()),                 // √2/√fan_in
            .normal(mean: 0, std: 1 / fi.squareRoot()),
        ]
        for (k, w) in want.enumerated() {
            let weight = try #require(graph.param(named: "\(2 * k).weight"))
            #expect(close(weight.initializer, w), "\(inits[k]) for weights: \(weight.initializer), expected \(w)")
            #expect(close(graph.param(named: "\(2 * k).bias")!.initializer, w), "\(inits[k]) for biases")
            #expect(close(graph.param(named: "\(2 * k + 1).weight")!.initializer, .uniform(-1 / 20.0.squareRoot(), 1 / 20.0.squareRoot())),
                    "the next layer keeps PyTorch's default")
        }
    }

    func close(_ a: Initializer, _ b: Initializer) -> Bool {
        switch (a, b) {
        case (.zeros, .zeros): return true
        case (.constant(let x), .constant(let y)): return abs(x - y) < 1e-12
        case (.uniform(let a0, let a1), .uniform(let b0, let b1)): return abs(a0 - b0) < 1e-12 && abs(a1 - b1) < 1e-12
        case (.normal(let m0, let s0), .normal(let m1, let s1)): return abs(m0 - m1) < 1e-12 && abs(s0 - s1) < 1e-12
        default: return false
        }
    }
}
