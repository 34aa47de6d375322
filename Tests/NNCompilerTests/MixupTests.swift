import Foundation
import NNIR
import Testing
@testable import NNCompiler

/// The soft-target cross-entropy behind mixup and CutMix (`Graph.withSoftLabels`, the train_mixed program): with
/// targets λ·onehot(y) + (1−λ)·onehot(y flipped) its loss is the interpolation λ·CE(y) + (1−λ)·CE(y flipped) and its
/// gradient (softmax − T)/n, as the NumPy reference computes them term by term (Tests/Fixtures/mixup.json, from
/// Tests/Reference/reference_mixup.py), and the gradient matches central differences. Only plain cross-entropy
/// classifiers get the program. The mixing itself (batches, CutMix's box, λ, the draws) is tested against the same
/// fixture in runtime/tests/unit_mixup.c.
@Suite struct MixupTests {
    /// logits x (n, k) → mean cross-entropy against labels y: the loss of a classifier whose output is its input.
    static func ceGraph(k: Int) throws -> (Graph, ValueID) {
        var g = makeTestGraph("ce")
        let x = try g.addInput("x", [k]), y = try g.addInput("y", [], dtype: .i32)
        let nll = try g.add(.nll, [g.add(.logSoftmax, [x]), y])
        g.outputs[.loss] = try g.add(.binary(.div), [nll, g.add(.batchSize, [])])
        g.outputs[.output] = x
        return (g, x)
    }

    static func lossCases() throws -> [[String: Any]] {
        let j = try readJSON(Paths.fixtures.appendingPathComponent("mixup.json"))
        return (j["cases"] as! [[String: Any]]).filter { $0["kind"] as? String == "loss" }
    }

    /// λ·onehot(yᵢ) + (1−λ)·onehot(y_{n−1−i}): the targets the runtime builds (mixup.c).
    static func softTargets(_ y: [Int], lam: Double, k: Int) -> Tensor64 {
        var t = Tensor64(shape: [y.count, k], repeating: 0)
        for i in y.indices {
            t.data[i * k + y[i]] += lam
            t.data[i * k + y[y.count - 1 - i]] += 1 - lam
        }
        return t
    }

    @Test func softTargetLossAndGradientMatchTheReference() throws {
        let cases = try Self.lossCases()
        #expect(cases.count == 3)
        for c in cases {
            let (n, k, lam) = (c["n"] as! Int, c["k"] as! Int, c["lam"] as! Double)
            let (g, x) = try Self.ceGraph(k: k)
            let soft = try #require(g.withSoftLabels())
            try soft.verify()
            let (full, adjoints) = soft.differentiated(soft.outputs[.loss]!, withRespectTo: [x])
            var inputs = ["x": Tensor64(shape: [n, k], data: c["z"] as! [Double]),
                          "y": Self.softTargets(c["y"] as! [Int], lam: lam, k: k)]
            let values = try full.evaluate(inputs: inputs, params: [:])
            let name = c["name"] as! String
            #expect(close(values[full.outputs[.loss]!]!.scalar, c["loss"] as! Double, rtol: 1e-12), "\(name): loss")
            expectClose(adjoints[0].flatMap { values[$0] }, Tensor64(shape: [n, k], data: c["grad"] as! [Double]),
                        rel: 1e-10, abs: 1e-14, "\(name): gradient vs (softmax − T)/n")
            // central differences of the soft-target graph itself
            let base = inputs["x"]!, h = 1e-6
            let fd = try (0..<base.count).map { i -> Double in
                var up = base, down = base
                up.data[i] += h
                down.data[i] -= h
                inputs["x"] = up
                let a = try soft.evaluate(inputs: inputs, params: [:])[soft.outputs[.loss]!]!.scalar
                inputs["x"] = down
                let b = try soft.evaluate(inputs: inputs, params: [:])[soft.outputs[.loss]!]!.scalar
                inputs["x"] = base
                return (a - b) / (2 * h)
            }
            expectClose(adjoints[0].flatMap { values[$0] }, Tensor64(shape: [n, k], data: fd), rel: 1e-6, abs: 1e-9,
                        "\(name): gradient vs central differences")
        }
    }

    /// With hard one-hot targets (λ = 1) the soft graph's loss is the hard graph's.
    @Test func oneHotTargetsGiveTheHardLoss() throws {
        let (g, _) = try Self.ceGraph(k: 4)
        let soft = try #require(g.withSoftLabels())
        var rng = TestRandom(seed: 3)
        let z = rng.tensor([5, 4], -2, 2), y = [3, 0, 1, 1, 2]
        let hard = try g.evaluate(inputs: ["x": z, "y": Tensor64(shape: [5], data: y.map(Double.init))], params: [:])
        let s = try soft.evaluate(inputs: ["x": z, "y": Self.softTargets(y, lam: 1, k: 4)], params: [:])
        #expect(close(s[soft.outputs[.loss]!]!.scalar, hard[g.outputs[.loss]!]!.scalar, rtol: 1e-14))
    }

    /// Plain cross-entropy classifiers (the MLP, the CNN, the auxiliary-loss model) get train_mixed; regression
    /// (sine) does not, nor does a hinge loss or label smoothing, whose labels feed more than an nll.
    @Test func onlyPlainCrossEntropyClassifiersGetTheMixedStep() throws {
        let driver = Driver(tools: try Paths.toolchain())
        for (example, mixed) in [("fashion_mnist_mlp", true), ("fashion_mnist_aux", true), ("sine_regression", false)] {
            let g = try driver.evaluate(Paths.examples.appendingPathComponent("\(example).swiftnn").path)
            let kinds = try compile(g).programs.map(\.program.kind)
            #expect(kinds.contains(.trainMixed) == mixed, "\(example): \(kinds)")
        }
        let dir = Paths.tempDir("mixup_losses")
        for (name, loss) in [("hinge", ".hinge"), ("smooth", ".crossEntropy(labelSmoothing: 0.1)")] {
            let src = """
                import NNDSL
                train(Sequential { Linear(4, 3) }, input: 4, loss: \(loss), optimizer: SGD(learningRate: 0.1))
                """
            let g = try driver.evaluate(try writeModel(name, src, in: dir).path)
            #expect(g.specialized(for: .train).withSoftLabels() == nil, "\(name)")
        }
    }
}
