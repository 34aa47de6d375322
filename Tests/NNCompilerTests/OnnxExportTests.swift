import Foundation
import NNCompiler
import NNExport
import NNIR
import SwiftProtobuf
import Testing

/// `nncc export`: trained examples exported to ONNX, checked by the `onnx` checker and run in onnxruntime
/// against the trainer's own `predict` (Tests/Reference/onnx_check.py, skipped with the reason when Python lacks
/// those packages); the file decoded back with SwiftProtobuf; bad weights files.
@Suite(.serialized) struct OnnxExportTests {
    static let work = Paths.tempDir("onnx")
    static let data: URL = {
        let d = work.appendingPathComponent("data")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        try? DataFiles.mnistFolder(d, train: 160, test: 40)
        return d
    }()
    static let checker = Paths.repo.appendingPathComponent("Tests/Reference/onnx_check.py").path

    /// Why the onnxruntime comparison cannot run here, or nil when it can.
    static let pythonMissing = pythonLacks(["numpy", "onnx", "onnxruntime"])

    /// Runs onnx_check.py on the model, or says why it is skipped.
    static func check(_ onnx: URL, x: URL, expected: URL, wholeBatchOnly: Bool = false,
                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        if let why = pythonMissing {
            print("OnnxExportTests: skipped the onnxruntime check of \(onnx.lastPathComponent): \(why)")
            return
        }
        let r = try Run.run("/usr/bin/env", ["python3", checker, onnx.path, x.path, expected.path, "--tol", "1e-5"]
                                             + (wholeBatchOnly ? ["--whole-batch-only"] : []))
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)", sourceLocation: sourceLocation)
        let name = onnx.deletingLastPathComponent().lastPathComponent + "/" + onnx.lastPathComponent
        print("OnnxExportTests: \(name): \(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    /// Trains the model for one epoch on tiny data, writes `predict`'s probabilities for 9 random inputs, exports
    /// the trained weights and checks the ONNX model against them. The file must use the operators `ops`
    /// (among others) and none of `absent`.
    static func trainExportAndCheck(_ model: URL, sample: [Int], ops: Set<String>, absent: Set<String> = [],
                                    train extra: [String] = [], tag: String = "",
                                    sourceLocation: SourceLocation = #_sourceLocation) throws {
        let dir = work.appendingPathComponent(model.deletingPathExtension().lastPathComponent + tag)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let trainer = try compileTrainer(model, into: dir, sourceLocation: sourceLocation)
        let w = dir.appendingPathComponent("w.safetensors"), x = dir.appendingPathComponent("x.npy")
        let probs = dir.appendingPathComponent("p.npy"), onnx = dir.appendingPathComponent("m.onnx")
        let t = try Run.run(trainer, ["train", "--data", data.path, "--epochs", "1", "--batch", "32", "--save", w.path, "--quiet"] + extra)
        try #require(t.status == 0, "\(t.stderr)", sourceLocation: sourceLocation)
        var rng = TestRandom(seed: 3)
        let count = 9 * sample.reduce(1, *)
        try DataFiles.npyF32(x, shape: [9] + sample, (0..<count).map { _ in Float(rng.next() % 256) / 255 })
        let p = try Run.run(trainer, ["predict", "--weights", w.path, "--input", x.path, "--output", probs.path, "--quiet"])
        try #require(p.status == 0, "\(p.stderr)", sourceLocation: sourceLocation)
        let e = try Run.run(Paths.nncc, ["export", model.path, "--weights", w.path, "-o", onnx.path])
        try #require(e.status == 0, "\(e.stderr)", sourceLocation: sourceLocation)
        #expect(e.stdout.contains("wrote \(onnx.path) (ONNX opset 17"), "\(e.stdout)", sourceLocation: sourceLocation)
        let used = Set(try Onnx_ModelProto(serializedBytes: Data(contentsOf: onnx)).graph.node.map(\.opType))
        #expect(ops.isSubset(of: used) && absent.isDisjoint(with: used), "operators \(used.sorted())", sourceLocation: sourceLocation)
        try check(onnx, x: x, expected: probs, sourceLocation: sourceLocation)
    }

    @Test func mlpMatchesPredict() throws {
        try Self.trainExportAndCheck(Paths.examples.appendingPathComponent("fashion_mnist_mlp.swiftnn"), sample: [784],
                                     ops: ["Gemm", "Relu", "Softmax"], absent: ["Add", "MatMul"])
    }

    /// The weights' input preprocessing (`--scale`, `--normalize`, in their metadata) is in the exported graph,
    /// as `predict` applies it: a Div by D for `--scale 1/D`, then Sub and Div by the training statistics.
    @Test func preprocessingIsExported() throws {
        try Self.trainExportAndCheck(Paths.examples.appendingPathComponent("fashion_mnist_mlp.swiftnn"), sample: [784],
                                     ops: ["Div", "Sub", "Gemm"], train: ["--scale", "1/2", "--normalize", "feature"], tag: "_feature")
        try Self.trainExportAndCheck(Paths.examples.appendingPathComponent("fashion_mnist_cnn.swiftnn"), sample: [1, 28, 28],
                                     ops: ["Mul", "Sub", "Div", "Conv"], train: ["--scale", "0.5", "--normalize", "channel"], tag: "_channel")
    }

    @Test func cnnMatchesPredict() throws {
        try Self.trainExportAndCheck(Paths.examples.appendingPathComponent("fashion_mnist_cnn.swiftnn"), sample: [1, 28, 28],
                                     ops: ["Conv", "Relu", "MaxPool", "Reshape", "Gemm", "Softmax"])
    }

    /// BatchNorm2d in eval mode is one BatchNormalization with the running statistics, the residual sum an Add.
    @Test func resnetMatchesPredict() throws {
        try Self.trainExportAndCheck(Paths.examples.appendingPathComponent("fashion_mnist_resnet.swiftnn"), sample: [1, 28, 28],
                                     ops: ["Conv", "BatchNormalization", "Add", "GlobalAveragePool", "Gemm"],
                                     absent: ["Sqrt", "Reciprocal", "ReduceSum"])
    }

    /// Every layer the DSL has that changes the inference graph: convolutions with stride, padding, dilation and
    /// groups, BatchNorm2d/BatchNorm (running statistics), both poolings (count_include_pad off), global
    /// average pooling, Flatten, Dropout/Dropout2d/StochasticDepth/DropConnect (gone in eval), LayerNorm, every activation, Maxout, concat,
    /// a residual sum and a LogSoftmax head.
    @Test func everyLayerMatchesPredict() throws {
        let model = try writeModel("zoo", """
            import NNDSL
            let x = Input(channels: 1, height: 28, width: 28)
            let h = x |> Sequential {
                Conv2d(1, 4, kernelSize: 3, stride: 2, padding: 1)                          // 14×14
                BatchNorm2d(4)
                LeakyReLU(negativeSlope: 0.1)
                Conv2d(4, 8, kernelSize: [3, 2], padding: [2, 1], dilation: 2, groups: 2)    // 14×14
                ELU(alpha: 0.5)
                Dropout2d(0.1)
                AvgPool2d(kernelSize: 3, stride: 2, padding: 1, countIncludePad: false)     // 7×7
                MaxPool2d(kernelSize: 2, stride: 1, padding: 1)                             // 8×8
                AvgPool2d(2)                                                                // 4×4
            }
            let pooled = h |> AdaptiveAvgPool2d(1) |> Flatten()                             // (n, 8)
            let a = h |> Flatten() |> Linear(128, 32) |> LayerNorm(32) |> GELU()
            let b = a |> Maxout(32, 16, pieces: 3) |> BatchNorm(16) |> Dropout(0.2) |> GELU(approximate: .tanh)
            let r = b |> Residual { Linear(16, 16); Sigmoid(); Linear(16, 16); Tanh(); StochasticDepth(0.2) }
            let c = concat(softplus(r) * 0.5, abs(pooled) - erf(pooled)) |> DropConnect(0.3, Linear(24, 10))
            let out = logSoftmax(c + exp(-(c * c)) / (sigmoid(c) + 1) + log(softmax(c) + 0.5) + (-tanh(c)))
            train(out, loss: .crossEntropy, optimizer: Adam(learningRate: 1e-3), batchSize: 32, epochs: 1, seed: 0)
            """, in: Self.work)
        try Self.trainExportAndCheck(model, sample: [1, 28, 28], ops: [
            "Conv", "BatchNormalization", "AveragePool", "MaxPool", "GlobalAveragePool", "Gemm", "ReduceMax", "Erf",
            "Tanh", "Sigmoid", "Softplus", "Concat", "LogSoftmax", "Sqrt",   // LayerNorm stays decomposed
        ], absent: ["Dropout"])
    }

    /// The ops the DSL does not put in an inference graph but the lowering handles, in a graph built by hand:
    /// each against the IR interpreter (float64), which the generated C is itself tested against. The graph
    /// takes batch statistics (sum_batch, batch_size), so only the whole batch is compared.
    @Test func everyLoweredOpMatchesTheInterpreter() throws {
        var g = makeTestGraph("ops")
        let x = try g.addInput("x", [6]), w = try g.addParam("w", [6]), wm = try g.addParam("W", [4, 6])
        let temperature = g.declareHyper("temperature", 2, "a hyperparameter in the inference graph")
        func op(_ o: Op, _ xs: ValueID..., declared: TensorType? = nil) throws -> ValueID { try g.add(o, xs, declared: declared) }
        func c(_ v: Double) throws -> ValueID { try op(.constant(v)) }
        func rows(_ dims: Int...) -> TensorType { TensorType(.f32, Shape(batched: true, dims)) }
        let waves = try op(.binary(.sub), op(.binary(.add), op(.binary(.mul), x, w), op(.unary(.sin), x)), op(.unary(.cos), x))
        let power = try op(.binary(.pow), op(.binary(.add), op(.unary(.abs), x), c(0.5)), c(1.5))
        let clipped = try op(.binary(.max), op(.binary(.min), waves, power), op(.unary(.floor), op(.binary(.mul), x, c(2))))
        let steps = try op(.binary(.mul), op(.unary(.sign), op(.binary(.sub), x, c(0.5))), op(.unary(.step), op(.binary(.sub), x, c(0.3))))
        let perRow = try op(.binary(.div), clipped, op(.binary(.add), op(.unary(.square), op(.sumRow, x)), c(1)))   // (n) with (n,6)
        let centered = try op(.binary(.sub), x, op(.binary(.div), op(.sumBatch, x), op(.batchSize)))
        let spread = try op(.binary(.mul), op(.broadcast, op(.unary(.sqrt), op(.unary(.reciprocal), op(.binary(.add), op(.unary(.abs), w), c(1)))), declared: rows(6)), centered)
        let gram = try op(.matmul(transA: true, transB: false), wm, wm)                       // (6,6)
        let mixed = try op(.binary(.mul), op(.matmul(transA: false, transB: false), steps, gram), op(.hyper(temperature)))
        let cube = try op(.reshape, op(.binary(.add), mixed, spread), declared: rows(2, 3))
        let folded = try op(.reshape, op(.sumTo, cube, declared: rows(1, 3)), declared: rows(3))
        let unbatched = try op(.sumTo, perRow, declared: TensorType(.f32, Shape([6])))
        let total = try op(.binary(.mul), op(.sumAll, wm), c(0.1))
        let shifted = try op(.binary(.add), op(.binary(.add), perRow, unbatched), total)
        let maxed = try op(.groupMax(2), op(.embed(start: 2, total: 6), op(.slice(start: 1, count: 3), shifted)))
        let projected = try op(.matmul(transA: false, transB: true), op(.unary(.neg), spread), wm)   // (n,4), no bias
        let out = try op(.concat, op(.concat, folded, maxed), projected)
        g.outputs = [.output: out]
        try g.verify()

        var rng = TestRandom(seed: 9)
        func values(_ count: Int, _ scale: Float) -> [Float] { (0..<count).map { _ in Float(Int(rng.next() % 401) - 200) / 200 * scale } }
        let (xv, wv, wmv) = (values(7 * 6, 2), values(6, 1), values(4 * 6, 0.5))
        let dir = Paths.tempDir("onnxops")
        let weights = dir.appendingPathComponent("w.safetensors"), xFile = dir.appendingPathComponent("x.npy")
        let expected = dir.appendingPathComponent("expected.npy"), onnx = dir.appendingPathComponent("ops.onnx")
        try writeSafetensors(weights, ["w": ([6], wv), "W": ([4, 6], wmv)])
        let model = try OnnxExport.model(g, weights: SafetensorsFile(contentsOf: weights))
        #expect(model.graph.output.map(\.name) == ["output"], "a regression's output is not softmaxed")
        try model.serializedData().write(to: onnx)
        let t = { (s: [Int], v: [Float]) in Tensor64(shape: s, data: v.map(Double.init)) }
        let result = try g.evaluate(inputs: ["x": t([7, 6], xv)], params: ["w": t([6], wv), "W": t([4, 6], wmv)])[out]!
        try DataFiles.npyF32(xFile, shape: [7, 6], xv)
        try DataFiles.npyF32(expected, shape: result.shape, result.data.map(Float.init))
        try Self.check(onnx, x: xFile, expected: expected, wholeBatchOnly: true)
    }

    /// Fractional max pooling draws its regions in every forward pass: no ONNX export, one line naming it.
    @Test func fractionalMaxPoolingIsRefused() throws {
        let dir = Paths.tempDir("onnxfmp")
        let model = try writeModel("fmp", """
            import NNDSL
            let model = Sequential { Conv2d(1, 2, kernelSize: 3); FractionalMaxPool2d(outputRatio: 0.5); Flatten(); Linear(18, 3) }
            train(model, input: [1, 8, 8], loss: .crossEntropy, optimizer: Adam())
            """, in: dir)
        let w = dir.appendingPathComponent("w.safetensors"), out = dir.appendingPathComponent("m.onnx")
        try writeSafetensors(w, ["0.weight": ([2, 1, 3, 3], Array(repeating: 0.1, count: 18)), "0.bias": ([2], [0, 0]),
                                 "3.weight": ([3, 18], Array(repeating: 0.1, count: 54)), "3.bias": ([3], [0, 0, 0])])
        let r = try Run.run(Paths.nncc, ["export", model.path, "--weights", w.path, "-o", out.path])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("op fractional_max_pool2d[2x2 to 3x3] at ") && r.stderr.contains("fmp.swiftnn:2:")
                && r.stderr.contains("FractionalMaxPool2d draws its regions at random in every forward pass"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    /// An op with no ONNX lowering is one error naming the op and its line in the model file.
    @Test func trainingOpsAreRefusedWithTheirSite() throws {
        var g = makeTestGraph("steps")
        let x = try g.addInput("x", [2])
        let site = SourceSite(file: "/m/steps.swiftnn", line: 7, column: 3)
        let scaled = try g.add(.binary(.mul), [x, g.add(.stepCount, [], site: site)], site: site)
        g.outputs = [.output: scaled]
        let dir = Paths.tempDir("onnxsteps"), w = dir.appendingPathComponent("w.safetensors")
        try writeSafetensors(w, [:])
        #expect(throws: Diagnostic.error("cannot export steps to ONNX: op step at /m/steps.swiftnn:7:3 has no ONNX lowering "
                                    + "(an op of training, not of the inference graph)")) {
            try OnnxExport.model(g, weights: SafetensorsFile(contentsOf: w))
        }
    }
}
