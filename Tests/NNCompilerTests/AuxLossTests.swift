import Foundation
import NNExport
import NNIR
import Testing
@testable import NNCompiler

/// Auxiliary losses (deep supervision): `train(loss: crossEntropy(main) + 0.3 * crossEntropy(aux), …)`. The training
/// loss is the weighted sum of the heads' cross-entropies (the NumPy reference's, Tests/Fixtures/aux_loss.json, from
/// Tests/Reference/reference_aux.py), its gradient matches central differences, and evaluation, predict and the ONNX
/// export see the main head alone: their programs hold no auxiliary parameter, and their outputs equal those of the
/// same weights in a model without the auxiliary head.
@Suite struct AuxLossTests {
    static func source(aux: Bool) -> String {
        """
        import NNDSL
        let x = Input(4)
        let h = x |> Linear(4, 5, name: "body") |> Tanh()
        let main = Linear(5, 3, name: "head")(h)
        \(aux ? """
        let aux = Linear(4, 3, name: "aux")(x)
        train(loss: crossEntropy(main) + 0.3 * crossEntropy(aux), optimizer: SGD(learningRate: 0.1), batchSize: 6)
        """ : "train(main, loss: .crossEntropy, optimizer: SGD(learningRate: 0.1), batchSize: 6)")
        """
    }

    static func forward(aux: Bool) throws -> Graph {
        let dir = Paths.tempDir(aux ? "aux_model" : "aux_model_without")
        let model = try writeModel(aux ? "aux" : "plain", source(aux: aux), in: dir)
        return try Driver(tools: try Paths.toolchain()).evaluate(model.path)
    }

    struct Fixture {
        var inputs: [String: Tensor64]
        var params: [String: Tensor64]
        var loss, mainLoss: Double
        var output: [Double]
    }

    static func fixture() throws -> Fixture {
        let j = try readJSON(Paths.fixtures.appendingPathComponent("aux_loss.json"))
        let n = j["n"] as! Int
        var params: [String: Tensor64] = [:]
        for (name, v) in j["params"] as! [String: [String: Any]] {
            params[name] = Tensor64(shape: v["shape"] as! [Int], data: v["data"] as! [Double])
        }
        let y = (j["y"] as! [Int]).map(Double.init)
        return Fixture(inputs: ["x": Tensor64(shape: [n, 4], data: j["x"] as! [Double]), "y": Tensor64(shape: [n], data: y)],
                       params: params, loss: j["loss"] as! Double, mainLoss: j["main_loss"] as! Double,
                       output: j["output"] as! [Double])
    }

    @Test func lossIsTheWeightedSumOfTheHeadsCrossEntropies() throws {
        let (g, f) = (try Self.forward(aux: true), try Self.fixture())
        let train = g.specialized(for: .train), eval = g.specialized(for: .eval)
        let t = try train.evaluate(inputs: f.inputs, params: f.params)
        let e = try eval.evaluate(inputs: f.inputs, params: f.params)
        #expect(close(t[train.outputs[.loss]!]!.scalar, f.loss, rtol: 1e-12), "train loss vs CE(main) + 0.3·CE(aux)")
        #expect(close(e[eval.outputs[.loss]!]!.scalar, f.mainLoss, rtol: 1e-12), "eval reports CE(main) alone")
        let out = e[eval.outputs[.output]!]!.data
        #expect(zip(out, f.output).allSatisfy { close($0, $1, rtol: 1e-12, atol: 1e-14) })
    }

    /// Every parameter's gradient, aux head included, against central differences of the training loss (float64).
    @Test func gradientMatchesFiniteDifferences() throws {
        let (g, f) = (try Self.forward(aux: true), try Self.fixture())
        let check = g.specialized(for: .gradcheck)
        let full = try check.differentiated()
        let values = try full.evaluate(inputs: f.inputs, params: f.params)
        var params = f.params
        func loss() throws -> Double { try check.evaluate(inputs: f.inputs, params: params)[check.outputs[.loss]!]!.scalar }
        let h = 1e-6
        for name in ["body.weight", "body.bias", "head.weight", "head.bias", "aux.weight", "aux.bias"] {
            let base = f.params[name]!
            let fd = try (0..<base.count).map { i -> Double in
                var up = base, down = base
                up.data[i] += h
                down.data[i] -= h
                params[name] = up
                let a = try loss()
                params[name] = down
                let b = try loss()
                params[name] = base
                return (a - b) / (2 * h)
            }
            let grad = full.paramID(named: name).flatMap(full.gradient(of:)).flatMap { values[$0] }
            expectClose(grad, Tensor64(shape: base.shape, data: fd), rel: 1e-6, abs: 1e-9, "gradient of \(name)")
        }
    }

    /// The eval and predict programs drop the auxiliary head (dead-code elimination after the mode switch); train
    /// and gradcheck keep it. Predict's output equals the output of a model without the head, on the same weights.
    @Test func inferenceDropsTheAuxiliaryHead() throws {
        let (g, plain, f) = (try Self.forward(aux: true), try Self.forward(aux: false), try Self.fixture())
        let model = try compile(g)
        for p in model.programs {
            let graph = p.program.graph
            let used = Set(graph.live(from: p.program.roots).compactMap { v -> String? in
                if case .param(let id) = graph[v].op { return graph.params[id.index].name } else { return nil }
            })
            let wantsAux = p.program.kind == .train || p.program.kind == .gradcheck || p.program.kind == .trainMixed
            #expect(used.contains("aux.weight") == wantsAux, "\(p.program.kind): \(used.sorted())")
        }
        var noAux = f.params
        noAux["aux.weight"] = nil
        noAux["aux.bias"] = nil
        let a = g.specialized(for: .eval), b = plain.specialized(for: .eval)
        let outA = try a.evaluate(inputs: f.inputs, params: f.params)[a.outputs[.output]!]!
        let outB = try b.evaluate(inputs: f.inputs, params: noAux)[b.outputs[.output]!]!
        #expect(outA.data == outB.data, "predict with the aux head equals predict without it")
        let c = model.cSource
        #expect(c.contains("\"aux.weight\""), "the aux head's weights are parameters: saved with the others")
    }

    /// The ONNX export has the main head's weights as initializers, not the auxiliary head's.
    @Test func onnxExportHasTheMainHeadOnly() throws {
        let (g, f) = (try Self.forward(aux: true), try Self.fixture())
        let dir = Paths.tempDir("aux_onnx")
        let w = dir.appendingPathComponent("w.safetensors")
        try writeSafetensors(w, f.params.mapValues { (shape: $0.shape, data: $0.data.map(Float.init)) })
        let m = try OnnxExport.model(g, weights: SafetensorsFile(contentsOf: w))
        let names = Set(m.graph.initializer.map(\.name))
        #expect(names.contains { $0.hasPrefix("head") } && !names.contains { $0.hasPrefix("aux") }, "\(names.sorted())")
    }
}
