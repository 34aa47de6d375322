import Foundation
import Testing
@testable import NNCompiler
import NNIR

/// BatchNorm and LayerNorm built by the DSL, specialized per execution mode and run by the float64 interpreter,
/// against the NumPy reference (Tests/Reference/reference_norm.py → Tests/Fixtures/norm.json): train-mode output,
/// loss, gradients for x, γ and β, BatchNorm's running statistics, and eval-mode output. Relative tolerance 1e-9.
@Suite struct NormalizationTests {
    static let fixture = try! readJSON(Paths.fixtures.appendingPathComponent("norm.json"))

    static func tensor(_ j: Any?) -> Tensor64 {
        let d = j as! [String: Any]
        return Tensor64(shape: d["shape"] as! [Int], data: d["data"] as! [Double])
    }

    static func forwardGraph(_ layer: String) throws -> Graph {
        let dir = Paths.tempDir(layer)
        let model = try writeModel("norm", """
            import NNDSL
            train(Sequential { \(layer) }, input: 4, loss: .mse, optimizer: SGD(learningRate: 0.1))
            """, in: dir)
        return try Driver(tools: try Paths.toolchain()).evaluate(model.path)
    }

    func expectClose(_ a: Tensor64?, _ e: Tensor64, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let a else { Issue.record("\(what): no value", sourceLocation: sourceLocation); return }
        #expect(a.shape == e.shape, "\(what) shape", sourceLocation: sourceLocation)
        let worst = zip(a.data, e.data).map { abs($0 - $1) / max(abs($1), 1e-12) }.max() ?? 0
        #expect(worst <= 1e-9, "\(what): relative error \(worst)", sourceLocation: sourceLocation)
    }

    @Test(arguments: [("batchnorm", "BatchNorm(4)"), ("layernorm", "LayerNorm(4)")])
    func matchesNumPyInBothModes(_ name: String, _ layer: String) throws {
        let c = (Self.fixture["cases"] as! [[String: Any]]).first { $0["name"] as? String == name }!
        let forward = try Self.forwardGraph(layer)
        let inputs = ["x": Self.tensor(c["x"]), "y": Self.tensor(c["target"])]
        var params = ["0.weight": Self.tensor(c["weight"]), "0.bias": Self.tensor(c["bias"])]
        if name == "batchnorm" {
            params["0.running_mean"] = Self.tensor(c["running_mean"])
            params["0.running_var"] = Self.tensor(c["running_var"])
        }

        let train = forward.specialized(for: .train)
        let x = train.ids.first { train[$0].op == .input("x") }!
        let w = train.node(of: train.paramID(named: "0.weight")!)!
        let b = train.node(of: train.paramID(named: "0.bias")!)!
        let (joint, grads) = train.differentiated(train.outputs[.loss]!, withRespectTo: [x, w, b])
        let values = try joint.evaluate(inputs: inputs, params: params)
        expectClose(values[joint.outputs[.output]!], Self.tensor(c["train_output"]), "train output")
        expectClose(values[joint.outputs[.loss]!], .scalar(c["loss"] as! Double), "loss")
        expectClose(values[grads[0]!], Self.tensor(c["grad_x"]), "∂loss/∂x")
        expectClose(values[grads[1]!], Self.tensor(c["grad_weight"]), "∂loss/∂γ")
        expectClose(values[grads[2]!], Self.tensor(c["grad_bias"]), "∂loss/∂β")
        if name == "batchnorm" {
            let stats = joint.assignments(values)
            let buffer = { (name: String) in BufferID.param(joint.paramID(named: name)!) }
            expectClose(stats[buffer("0.running_mean")], Self.tensor(c["new_running_mean"]), "running_mean after a step")
            expectClose(stats[buffer("0.running_var")], Self.tensor(c["new_running_var"]), "running_var after a step")
            #expect(forward.params.contains { $0.name == "0.num_batches_tracked" && $0.counter })
        }

        let eval = forward.specialized(for: .eval)
        #expect(!eval.nodes.contains { if case .assign = $0.op { return true } else { return false } },
                "evaluation never updates running statistics")
        let out = try eval.evaluate(inputs: inputs, params: params)
        expectClose(out[eval.outputs[.output]!], Self.tensor(c["eval_output"]), "eval output")
    }

    /// Gradcheck mode keeps batch statistics but turns dropout off; eval turns both off.
    @Test func modesSelectTheRightBehaviour() throws {
        let forward = try Self.forwardGraph("BatchNorm(4); Dropout(0.5)")
        func has(_ g: Graph, _ op: Op) -> Bool { g.nodes.contains { $0.op == op } }
        let (train, check, eval) = (forward.specialized(for: .train), forward.specialized(for: .gradcheck),
                                    forward.specialized(for: .eval))
        #expect(has(train, .dropoutMask) && has(train, .sumBatch))
        #expect(!has(check, .dropoutMask) && has(check, .sumBatch))
        #expect(!has(eval, .dropoutMask) && !has(eval, .sumBatch))
        for g in [train, check, eval] { #expect(!g.nodes.contains { if case .byMode = $0.op { return true } else { return false } }) }
        #expect(forward.hypers.contains { $0.name == "dropout" && $0.value == 0.5 })
    }
}
