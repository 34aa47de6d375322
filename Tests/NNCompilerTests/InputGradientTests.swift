import Foundation
import NNCompiler
import NNIR
import Testing

/// The input-gradient program (`input_grad`) and the trainer's `saliency` and `maximize` built on it, on a small MLP
/// (BatchNorm, Dropout, Tanh: eval mode matters), a small CNN (BatchNorm2d, two convolutions, max pooling) and a small
/// residual CNN (a skip connection, global average pooling):
/// - its graph against central differences, in float64 through the interpreter, with random seeds on every layer;
/// - the compiled float32 trainer's gradient (`saliency -o F.npy`) and score against that graph, for a class, a hidden
///   unit and a channel;
/// - a linear model's saliency equal to its weight row; maximize's ascent without regularizers increasing at every
///   step; the pictures pixel by pixel (Tests/Reference/png_check.py --tiles); bad command lines.
@Suite(.serialized) struct InputGradientTests {
    static let work = Paths.tempDir("inputgrad")
    static let checker = Paths.repo.appendingPathComponent("Tests/Reference/png_check.py").path
    static let pythonMissing = pythonLacks(["numpy"])

    static let mlp = ("ig_mlp", "16", "Linear(16, 8); BatchNorm(8); ReLU(); Dropout(0.3); Linear(8, 6); Tanh(); Linear(6, 3)")
    static let cnn = ("ig_cnn", "[1, 8, 8]", """
        Conv2d(1, 3, kernelSize: 3, padding: 1); ReLU(); MaxPool2d(kernelSize: 2)
        Conv2d(3, 4, kernelSize: 3, padding: 1); BatchNorm2d(4); ReLU(); Flatten(); Linear(64, 3)
        """)
    static let res = ("ig_res", "[1, 6, 6]", """
        Conv2d(1, 4, kernelSize: 3, padding: 1); BatchNorm2d(4); ReLU()
        Residual { Conv2d(4, 4, kernelSize: 3, padding: 1); BatchNorm2d(4); ReLU() }
        AdaptiveAvgPool2d(1); Flatten(); Linear(4, 3)
        """)

    struct Model {
        var exe: String
        var graph: Graph              // the input_grad program's
        var params: [String: Tensor64]
        var weights: URL
    }

    /// Compiles `layers`, and writes random weights (running variances positive) both as a file and as float64
    /// tensors of the same float32 values.
    static func model(_ spec: (String, String, String), sourceLocation: SourceLocation = #_sourceLocation) throws -> Model {
        let source = try writeModel(spec.0, """
            import NNDSL
            let model = Sequential {
            \(spec.2)
            }
            train(model, input: \(spec.1), loss: .crossEntropy, optimizer: SGD(learningRate: 0.1), batchSize: 4, epochs: 1, seed: 0)
            """, in: work)
        let exe = try compileTrainer(source, into: work, sourceLocation: sourceLocation)
        let forward = try Driver(tools: try Paths.toolchain()).evaluate(source.path)
        let program = try #require(try compile(forward).programs.first { $0.program.kind == .inputGrad }, sourceLocation: sourceLocation)
        var rng = TestRandom(seed: 5)
        var tensors: [String: (shape: [Int], data: [Float])] = [:], counters: [String: Int64] = [:], params: [String: Tensor64] = [:]
        for p in forward.params {
            if p.counter { counters[p.name] = 3; params[p.name] = Tensor64(shape: p.shape, data: [3]); continue }
            let variance = p.name.hasSuffix("running_var")
            let data = (0..<p.shape.reduce(1, *)).map { _ in Float(variance ? rng.uniform(0.5, 1.5) : rng.uniform(-0.6, 0.6)) }
            tensors[p.name] = (p.shape, data)
            params[p.name] = Tensor64(shape: p.shape, data: data.map(Double.init))
        }
        let weights = work.appendingPathComponent(spec.0 + ".safetensors")
        try writeSafetensors(weights, tensors, counters: counters)
        return Model(exe: exe, graph: program.program.graph, params: params, weights: weights)
    }

    /// The seeded layers' inputs, all zero but `unit`'s (a one-hot, or 1/(H·W) over a channel), for n samples.
    static func seeds(_ g: Graph, n: Int, layer: String, index: Int) -> [String: Tensor64] {
        var out: [String: Tensor64] = [:]
        for s in g.seedInputs() {
            var t = Tensor64(shape: [n] + s.layer.shape.dims, repeating: 0)
            if s.layer.name == layer {
                let per = s.layer.shape.fixedCount, plane = s.layer.shape.dims.count >= 2 ? per / s.layer.shape.dims[0] : 1
                for i in 0..<n { for k in 0..<plane { t.data[i * per + index * plane + k] = 1 / Double(plane) } }
            }
            out[s.name] = t
        }
        return out
    }

    static func readNpyF32(_ url: URL) throws -> [Float] {
        let d = try Data(contentsOf: url)
        let headerEnd = 10 + Int(d[8]) + Int(d[9]) << 8
        return d[headerEnd...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    // ------------------------------------------------------------------------
    // the gradient

    /// Central differences of the score, in float64, against the graph's gradient, with random seeds on every layer
    /// output of two samples: the backward pass from every layer at once, BatchNorm on running statistics, no dropout.
    @Test(arguments: [mlp, cnn, res])
    func graphMatchesCentralDifferences(_ spec: (String, String, String)) throws {
        let m = try Self.model(spec)
        var rng = TestRandom(seed: 9)
        let xShape = [2] + m.graph.type(m.graph.ids.first { m.graph[$0].op == .input("x") }!).shape.dims
        var inputs = ["x": rng.tensor(xShape, -1, 1)]
        for s in m.graph.seedInputs() { inputs[s.name] = rng.tensor([2] + s.layer.shape.dims, -1, 1) }
        let score = { (x: Tensor64) throws -> Double in
            var i = inputs
            i["x"] = x
            return try m.graph.evaluate(inputs: i, params: m.params)[m.graph.outputs[.score]!]!.data[0]
        }
        let dx = try #require(try m.graph.evaluate(inputs: inputs, params: m.params)[m.graph.outputs[.inputGradient]!])
        let eps = 1e-6
        for _ in 0..<24 {
            let k = Int(rng.next() % UInt64(dx.data.count))
            var (plus, minus) = (inputs["x"]!, inputs["x"]!)
            plus.data[k] += eps
            minus.data[k] -= eps
            let numerical = (try score(plus) - score(minus)) / (2 * eps)
            #expect(close(dx.data[k], numerical, rtol: 1e-6, atol: 1e-8), "\(spec.0) x[\(k)]: analytic \(dx.data[k]), numerical \(numerical)")
        }
    }

    /// `saliency -o F.npy` of the compiled trainer (float32) against the graph in float64, and its printed score.
    @Test(arguments: [(mlp, ["2", "h0:5", "h5:1"]), (cnn, ["1", "h0:2", "h4:3"]), (res, ["0", "h3_1:2", "h4:1"])])
    func trainerMatchesTheGraph(_ spec: (String, String, String), _ units: [String]) throws {
        let m = try Self.model(spec)
        var rng = TestRandom(seed: 13)
        let dims = m.graph.type(m.graph.ids.first { m.graph[$0].op == .input("x") }!).shape.dims
        let x = rng.tensor([3] + dims, -1, 1)
        let xFile = Self.work.appendingPathComponent(spec.0 + "_x.npy")
        try DataFiles.npyF32(xFile, shape: [3] + dims, x.data.map(Float.init))
        let sample = Tensor64(shape: [1] + dims, data: Array(x.data[dims.reduce(1, *)...].prefix(dims.reduce(1, *))).map { Double(Float($0)) })
        for unit in units {
            let out = Self.work.appendingPathComponent("\(spec.0)_\(unit.replacingOccurrences(of: ":", with: "_")).npy")
            let r = try Run.run(m.exe, ["saliency", "--weights", m.weights.path, "--input", xFile.path, "--index", "1", "--unit", unit, "-o", out.path])
            try #require(r.status == 0, "\(r.stderr)")
            let (layer, index) = unit.contains(":") ? (String(unit.split(separator: ":")[0]), Int(unit.split(separator: ":")[1])!)
                                                    : (m.graph.seedInputs().first { $0.layer.isOutput }!.layer.name, Int(unit)!)
            var inputs = Self.seeds(m.graph, n: 1, layer: layer, index: index)
            inputs["x"] = sample
            let v = try m.graph.evaluate(inputs: inputs, params: m.params)
            let want = v[m.graph.outputs[.inputGradient]!]!, score = v[m.graph.outputs[.score]!]!.data[0]
            let got = try Self.readNpyF32(out).map(Double.init)
            let scale = want.data.map(abs).max()!
            #expect(scale > 0, "\(spec.0) \(unit): a zero gradient tests nothing")
            expectClose(Tensor64(shape: want.shape, data: got), want, rel: 0, abs: 1e-5 * scale, "\(spec.0) --unit \(unit)")
            let printed = Double(String(r.stdout.components(separatedBy: "score ").last!.prefix { $0 != ";" && $0 != "\n" })) ?? .nan
            #expect(close(printed, score, rtol: 1e-5, atol: 1e-6), "\(spec.0) \(unit): printed \(r.stdout), interpreter \(score)")
        }
    }

    /// The saliency of a linear model's class c is its weight row c, exactly (one-hot · W in float32), whatever the
    /// sample; and the picture: the sample beside |row c| as a heat map, pixel by pixel.
    @Test func linearModelSaliencyIsItsWeightRow() throws {
        let m = try Self.model(("ig_linear", "16", "Linear(16, 4)"))
        let xFile = Self.work.appendingPathComponent("ig_linear_x.npy")
        var rng = TestRandom(seed: 3)
        try DataFiles.npyF32(xFile, shape: [2, 16], (0..<32).map { _ in Float(rng.uniform(0, 1)) })
        let w = try readSafetensors(m.weights)["0.weight"]!.data
        for c in 0..<4 {
            let out = Self.work.appendingPathComponent("ig_linear_\(c).npy")
            let r = try Run.run(m.exe, ["saliency", "--weights", m.weights.path, "--input", xFile.path, "--index", "1", "--class", "\(c)", "-o", out.path])
            try #require(r.status == 0, "\(r.stderr)")
            #expect(try Self.readNpyF32(out) == Array(w[(c * 16)..<((c + 1) * 16)]), "class \(c)")
        }
        let png = Self.work.appendingPathComponent("ig_linear.png")
        let r = try Run.run(m.exe, ["saliency", "--weights", m.weights.path, "--input", xFile.path, "--index", "1", "--class", "2", "-o", png.path])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasSuffix("wrote \(png.path) (the input and |gradient|, 227 x 114 pixels)\n"), "\(r.stdout)")
        try Self.checkTiles(png, [1, 4, 4], ["image:\(xFile.path):1", "heat:\(Self.work.appendingPathComponent("ig_linear_2.npy").path)"])
    }

    static func checkTiles(_ png: URL, _ chw: [Int], _ specs: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        if let why = pythonMissing {
            print("InputGradientTests: skipped the pixel check of \(png.lastPathComponent): \(why)")
            return
        }
        let c = try Run.run("/usr/bin/env", ["python3", checker, "--tiles", png.path] + chw.map(String.init) + specs)
        #expect(c.status == 0, "\(c.stdout)\(c.stderr)", sourceLocation: sourceLocation)
    }

    // ------------------------------------------------------------------------
    // maximize

    /// Without regularizers every step raises the unit (backtracking), for a class, a hidden unit and a channel; the
    /// picture is the input the ascent ends at (the same seed's .npy), pixel by pixel; with the default regularizers
    /// the run is reproducible.
    @Test(arguments: [(mlp, ["1", "h4:3"], [1, 4, 4]), (cnn, ["2", "h4:1"], [1, 8, 8])])
    func maximizeRaisesTheUnitAtEveryStep(_ spec: (String, String, String), _ units: [String], _ chw: [Int]) throws {
        let m = try Self.model(spec)
        for unit in units {
            let stem = Self.work.appendingPathComponent("\(spec.0)_max_\(unit.replacingOccurrences(of: ":", with: "_"))").path
            let off = ["--l2", "0", "--jitter", "0", "--blur-every", "0", "--steps", "30"]
            let r = try Run.run(m.exe, ["maximize", "--weights", m.weights.path, "--unit", unit, "-o", stem + ".png", "--log", stem + ".jsonl"] + off)
            try #require(r.status == 0, "\(r.stderr)")
            let values = try readJSONL(URL(fileURLWithPath: stem + ".jsonl")).map { ($0["value"] as! NSNumber).doubleValue }
            #expect(values.count == 31, "\(unit): \(values.count) steps logged: \(r.stdout)")
            #expect(zip(values, values.dropFirst()).allSatisfy { $0 < $1 }, "\(spec.0) \(unit): \(values)")
            #expect(r.stdout.contains(String(format: "after %d steps", values.count - 1)) && r.stdout.contains("(114 x 114 pixels)"), "\(r.stdout)")
            let npy = try Run.run(m.exe, ["maximize", "--weights", m.weights.path, "--unit", unit, "-o", stem + ".npy", "--quiet"] + off)
            try #require(npy.status == 0 && npy.stdout.isEmpty, "\(npy.stderr)")
            try Self.checkTiles(URL(fileURLWithPath: stem + ".png"), chw, ["image:\(stem).npy"])
        }
        if spec.0 == Self.mlp.0 {   // unit 3 of the ReLU h2 is off at the start: a zero gradient, and the hint
            let r = try Run.run(m.exe, ["maximize", "--weights", m.weights.path, "--unit", "h2:3", "-o", Self.work.appendingPathComponent("dead.npy").path])
            #expect(r.status == 0 && r.stdout.contains("its gradient is zero at the start, as behind a ReLU that is off there"), "\(r.stdout)")
        }
        let a = Self.work.appendingPathComponent("\(spec.0)_reg_a.npy"), b = Self.work.appendingPathComponent("\(spec.0)_reg_b.npy")
        for f in [a, b] {
            let r = try Run.run(m.exe, ["maximize", "--weights", m.weights.path, "--unit", "0", "-o", f.path, "--steps", "12", "--seed", "4"])
            try #require(r.status == 0, "\(r.stderr)")
        }
        #expect(try Data(contentsOf: a) == Data(contentsOf: b), "maximize is reproducible for a seed")
    }

    // ------------------------------------------------------------------------
    // errors

    @Test func badCommandLines() throws {
        let m = try Self.model(Self.mlp)
        let flat = try Self.model(("ig_flat", "10", "Linear(10, 2)"))
        let xFile = Self.work.appendingPathComponent("ig_err_x.npy")
        try DataFiles.npyF32(xFile, shape: [2, 16], [Float](repeating: 0.5, count: 32))
        let out = Self.work.appendingPathComponent("ig_err.png").path
        let w = m.weights.path
        let cases: [(String, [String], Int32, String)] = [
            (m.exe, ["maximize", "--weights", w, "--unit", "h9:1", "-o", out], 2,
             "error: --unit h9:1: model 'ig_mlp' has no layer 'h9' (its layers: h0 (8), h1 (8), h2 (8), h4 (6), h5 (6), h6 (3, the output))"),
            (m.exe, ["maximize", "--weights", w, "--unit", "h4:6", "-o", out], 2, "error: --unit h4:6: index 6 is out of range: h4 (6) has 6 units (0 to 5)"),
            (m.exe, ["maximize", "--weights", w, "--unit", "3", "-o", out], 2,
             "error: --unit 3: class 3 is out of range: model 'ig_mlp' has 3 classes (0 to 2)"),
            (m.exe, ["maximize", "--weights", w, "--unit", "h4", "-o", out], 2, "error: --unit h4: expected a class C or LAYER:INDEX (e.g. 3 or h8:17)"),
            (m.exe, ["maximize", "--weights", w, "-o", out], 2, "error: maximize: needs --unit U"),
            (m.exe, ["maximize", "--weights", w, "--unit", "1", "-o", "a.jpg"], 2, "error: --output a.jpg: expected a .png (the picture) or .npy"),
            (m.exe, ["maximize", "--weights", w, "--unit", "1", "-o", out, "--dropout", "0.1"], 2,
             "error: '--dropout' is a hyperparameter of 'train' and 'search', not a flag of 'maximize'"),
            (m.exe, ["saliency", "--weights", w, "-o", out], 2, "error: saliency: needs --input X"),
            (m.exe, ["saliency", "--weights", w, "--input", xFile.path, "--index", "2", "-o", out], 2,
             "error: --index 2: out of range: \(xFile.path) has 2 samples (0 to 1)"),
            (m.exe, ["saliency", "--weights", w, "--input", xFile.path, "--class", "3", "-o", out], 2,
             "error: --class 3: class 3 is out of range: model 'ig_mlp' has 3 classes (0 to 2)"),
            (m.exe, ["saliency", "--weights", w, "--input", xFile.path, "--class", "1", "--unit", "1", "-o", out], 2,
             "error: saliency: give --class C or --unit U, not both"),
            (m.exe, ["saliency", "--weights", w, "--input", xFile.path, "--index", "-1", "-o", out], 2, "error: --index: expected a non-negative integer, got '-1'"),
            (m.exe, ["saliency", "--weights", Self.work.appendingPathComponent("none.safetensors").path, "--input", xFile.path, "-o", out], 1,
             "none.safetensors"),
            (flat.exe, ["saliency", "--weights", flat.weights.path, "--input", xFile.path, "-o", out], 2,
             "error: saliency: model 'ig_flat' takes 10 features, not an image: there is no picture to draw (--output F.npy writes the gradient)"),
            (flat.exe, ["maximize", "--weights", flat.weights.path, "--unit", "0", "-o", out], 2,
             "error: maximize: model 'ig_flat' takes 10 features, not an image: there is no picture to draw (--output F.npy writes the input)"),
        ]
        for (exe, args, status, message) in cases {
            let r = try Run.run(exe, args)
            #expect(r.status == status && r.stderr.hasPrefix("\(URL(fileURLWithPath: exe).lastPathComponent): error: ") && r.stderr.contains(message),
                    "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: "a.jpg"), "no output for \(args)")
        }
    }
}
