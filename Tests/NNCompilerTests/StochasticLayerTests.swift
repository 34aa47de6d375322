import Foundation
import Testing
@testable import NNCompiler
import NNIR

/// DropConnect, StochasticDepth and FractionalMaxPool2d (#19) through the generated C: the trainer's first
/// training loss and its predictions against the float64 interpreter given the very masks and samples the
/// trainer draws (its generator replayed here), seeded reproducibility, p = 0 equal to the plain model,
/// evaluation equal to the model without the drop layers, and gradcheck.
@Suite(.serialized) struct StochasticLayerTests {
    static let dir = Paths.tempDir("stochastic")

    static let dropSource = """
        import NNDSL
        let model = Sequential {
            Linear(6, 16); ReLU()
            Residual { Linear(16, 16); Tanh(); StochasticDepth(0.5) }
            DropConnect(0.5, Linear(16, 3))
        }
        train(model, input: 6, loss: .crossEntropy, optimizer: SGD(learningRate: 0.1), batchSize: 4, epochs: 2, seed: 7)
        """
    /// The same network without its drop layers: the same parameter names.
    static let plainSource = dropSource.replacingOccurrences(of: "; StochasticDepth(0.5)", with: "")
        .replacingOccurrences(of: "DropConnect(0.5, Linear(16, 3))", with: "Linear(16, 3)")

    /// 8×8 → 5×5: α = 6/4 = 1.5, so the regions depend on u.
    static let poolSource = """
        import NNDSL
        let model = Sequential {
            Conv2d(1, 3, kernelSize: 3, padding: 1)
            FractionalMaxPool2d(kernelSize: 2, outputRatio: 0.7)
            Flatten(); Linear(75, 3)
        }
        train(model, input: [1, 8, 8], loss: .crossEntropy, optimizer: SGD(learningRate: 0.1), batchSize: 4, epochs: 2, seed: 7)
        """

    /// Ten samples of `shape` with labels in 0..<3, as .npy files.
    static func data(_ tag: String, _ shape: [Int]) throws -> (x: URL, y: URL, xs: [Float], ys: [Int]) {
        var rng = TestRandom(seed: 21)
        let n = 10, k = shape.reduce(1, *)
        let xs = (0..<(n * k)).map { _ in Float(rng.uniform(-2, 2)) }
        let ys = (0..<n).map { i in Int(xs[(i * k)..<(i * k + k)].reduce(0, +) > 0 ? 1 : 0) + (xs[i * k] > 1 ? 1 : 0) }
        let (x, y) = (dir.appendingPathComponent("\(tag)_x.npy"), dir.appendingPathComponent("\(tag)_y.npy"))
        try DataFiles.npyF32(x, shape: [n] + shape, xs)
        try DataFiles.npy(y, descr: "<i4", shape: [n], raw: ys.map { Int32($0) }.withUnsafeBytes { Data($0) })
        return (x, y, xs, ys)
    }

    /// Random weights for every parameter, written where `--init`/`--weights` read them.
    static func weights(_ forward: Graph, _ tag: String) throws -> (URL, [String: Tensor64]) {
        var rng = TestRandom(seed: 3)
        var w: [String: (shape: [Int], data: [Float])] = [:]
        for p in forward.params where !p.counter { w[p.name] = (p.shape, (0..<p.count).map { _ in Float(rng.uniform(-0.5, 0.5)) }) }
        let url = dir.appendingPathComponent("\(tag).safetensors")
        try writeSafetensors(url, w)
        return (url, w.mapValues { Tensor64(shape: $0.shape, data: $0.data.map(Double.init)) })
    }

    /// The values the trainer's random nodes draw, in the order its kernels run them (the graph's order), from
    /// `rng` (ctx->rng): a dropout mask keeps with probability 1 − p in float32, samples are U[0, 1) as float32.
    static func draws(_ g: Graph, batch n: Int, hypers: [String: Double] = [:], _ rng: inout RuntimeRandom) -> [ValueID: Tensor64] {
        var out: [ValueID: Tensor64] = [:]
        for v in g.ids where g[v].op.isRandom {
            let full = g[v].type.shape.full(batch: n)
            let data: [Double] = (0..<full.reduce(1, *)).map { _ in
                let u = Float(rng.uniform())
                guard g[v].op == .dropoutMask, case .hyper(let h) = g[g[v].inputs[0]].op else { return Double(u) }
                let p = Float(hypers[g[h].name] ?? g[h].value)
                return u >= p ? Double(1 / (1 - p)) : 0
            }
            out[v] = Tensor64(shape: full, data: data)
        }
        return out
    }

    static func firstLoss(_ exe: String, _ d: (x: URL, y: URL, xs: [Float], ys: [Int]), init w: URL, _ extra: [String] = []) throws -> Double {
        let log = dir.appendingPathComponent("first.jsonl")
        let r = try Run.run(exe, ["train", "--train-x", d.x.path, "--train-y", d.y.path, "--val-split", "0", "--init", w.path, "--no-shuffle",
                                  "--epochs", "1", "--log", log.path, "--log-every", "1", "--quiet"] + extra)
        try #require(r.status == 0, "\(r.stderr)")
        return try #require(try readJSONL(log).first?["loss"] as? Double)
    }

    static func predict(_ exe: String, weights w: URL, input x: URL, _ tag: String) throws -> [Float] {
        let out = dir.appendingPathComponent("\(tag).npy")
        let r = try Run.run(exe, ["predict", "--weights", w.path, "--input", x.path, "--output", out.path, "--batch", "4"])
        try #require(r.status == 0, "\(r.stderr)")
        let raw = try Data(contentsOf: out)
        let hl = Int(raw[8]) | Int(raw[9]) << 8
        return raw.subdata(in: (10 + hl)..<raw.count).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    static func batch(_ d: (x: URL, y: URL, xs: [Float], ys: [Int]), _ range: Range<Int>, _ shape: [Int]) -> [String: Tensor64] {
        let k = shape.reduce(1, *)
        return ["x": Tensor64(shape: [range.count] + shape, data: d.xs[(range.lowerBound * k)..<(range.upperBound * k)].map(Double.init)),
                "y": Tensor64(shape: [range.count], data: d.ys[range].map(Double.init))]
    }

    /// Softmax of each row of logits (n, 3) against predict's probabilities.
    static func expectProbabilities(_ probs: [Float], _ logits: Tensor64, offset: Int, _ what: String,
                                    sourceLocation: SourceLocation = #_sourceLocation) {
        for i in 0..<logits.shape[0] {
            let row = logits.data[(i * 3)..<(i * 3 + 3)], mx = row.max()!
            let e = row.map { Foundation.exp($0 - mx) }, s = e.reduce(0, +)
            for j in 0..<3 {
                let got = Double(probs[(offset + i) * 3 + j])
                #expect(abs(got - e[j] / s) < 1e-5, "\(what) sample \(offset + i) class \(j): C \(got), interpreter \(e[j] / s)",
                        sourceLocation: sourceLocation)
            }
        }
    }

    /// The first training step's loss is the interpreter's on the masks the trainer drew: ctx->rng is seeded
    /// from --seed's model stream, and StochasticDepth's (n) mask is drawn before DropConnect's (3,16) one.
    @Test func dropLayersMatchTheInterpreterOnTheTrainersMasks() throws {
        let model = try writeModel("drop", Self.dropSource, in: Self.dir)
        let exe = try compileTrainer(model, into: Self.dir)
        let d = try Self.data("drop", [6])
        let forward = try Driver(tools: try Paths.toolchain()).evaluate(model.path)
        let (w, params) = try Self.weights(forward, "drop_w")
        let train = forward.specialized(for: .train)
        for p in [0.5, 0.25] {
            let hypers = ["stochastic_depth": p, "drop_connect": 1 - p]
            let first = try Self.firstLoss(exe, d, init: w, ["--seed", "7", "--stochastic-depth", "\(p)", "--drop-connect", "\(1 - p)"])
            var rng = RuntimeRandom(seed: 7, stream: 3)
            let drawn = Self.draws(train, batch: 4, hypers: hypers, &rng)
            #expect(drawn.count == 2)
            let want = try train.evaluate(inputs: Self.batch(d, 0..<4, [6]), params: params, hypers: hypers, draws: drawn)[train.outputs[.loss]!]!.scalar
            #expect(close(first, want, rtol: 1e-5), "p \(p): C \(first), interpreter \(want)")
        }
        // Evaluation is the plain network: predict against the interpreter's eval graph, no draws.
        let probs = try Self.predict(exe, weights: w, input: d.x, "drop_p")
        let eval = forward.specialized(for: .eval)
        #expect(!eval.ids.contains { eval[$0].op.isRandom })
        let logits = try eval.evaluate(inputs: Self.batch(d, 0..<10, [6]), params: params)[eval.outputs[.output]!]!
        Self.expectProbabilities(probs, logits, offset: 0, "eval")
        let check = try Run.run(exe, ["gradcheck", "--train-x", d.x.path, "--train-y", d.y.path, "--samples", "6"])
        #expect(check.status == 0 && check.stdout.contains("gradcheck: passed"), "\(check.stdout)\(check.stderr)")
    }

    static func losses(_ exe: String, _ d: (x: URL, y: URL, xs: [Float], ys: [Int]), _ extra: [String], _ tag: String) throws -> [Double] {
        let log = dir.appendingPathComponent("\(tag).jsonl")
        let r = try Run.run(exe, ["train", "--train-x", d.x.path, "--train-y", d.y.path, "--val-split", "0", "--log", log.path, "--log-every", "1", "--quiet"] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        return try readJSONL(log).compactMap { $0["step"] != nil ? $0["loss"] as? Double : nil }
    }

    /// The same seed gives the same run and another seed another; rates of 0 train exactly like the network
    /// without the drop layers; predictions are deterministic and equal the plain network's on the same weights.
    @Test func dropLayersAreSeededAndOffInEvaluation() throws {
        let exe = try compileTrainer(try writeModel("drop2", Self.dropSource, in: Self.dir), into: Self.dir)
        let plain = try compileTrainer(try writeModel("plain2", Self.plainSource, in: Self.dir), into: Self.dir)
        let d = try Self.data("drop2", [6])
        let a = try Self.losses(exe, d, ["--seed", "4"], "a"), b = try Self.losses(exe, d, ["--seed", "4"], "b")
        let c = try Self.losses(exe, d, ["--seed", "5"], "c")
        #expect(a == b && a.count == 6, "reproducible with a seed")
        #expect(a != c, "another seed draws other masks")
        let off = try Self.losses(exe, d, ["--seed", "4", "--drop-connect", "0", "--stochastic-depth", "0"], "off")
        let none = try Self.losses(plain, d, ["--seed", "4"], "none")
        #expect(off == none, "rates of 0 train exactly like the network without drop layers")
        #expect(off != a)
        let w = Self.dir.appendingPathComponent("drop2.safetensors")
        #expect(try Run.run(exe, ["train", "--train-x", d.x.path, "--train-y", d.y.path, "--val-split", "0", "--save", w.path, "--quiet"]).status == 0)
        let p1 = try Self.predict(exe, weights: w, input: d.x, "p1"), p2 = try Self.predict(exe, weights: w, input: d.x, "p2")
        let p3 = try Self.predict(plain, weights: w, input: d.x, "p3")
        #expect(p1 == p2, "predictions are deterministic")
        #expect(p1 == p3, "evaluation is the network without its drop layers")
    }

    /// Two random nodes of one type are two draws: CSE must not merge them (it did merge the two residual
    /// blocks' dropout masks of fashion_mnist_resmlp, whose blocks then shared one mask per step).
    @Test func commonSubexpressionEliminationKeepsEveryDraw() throws {
        var g = makeTestGraph("draws")
        let x = try g.addInput("x", [4])
        let rate = g.declareHyper("dropout", 0.5, "")
        func drop(_ h: ValueID) throws -> ValueID {
            try g.add(.binary(.mul), [h, g.add(.dropoutMask, [g.add(.hyper(rate), [])], declared: g.type(x))])
        }
        let noise = { try g.add(.uniformNoise, [], declared: g.type(x)) }
        let y = try g.add(.binary(.add), [drop(drop(x)), g.add(.binary(.mul), [noise(), noise()])])
        g.outputs[.output] = y
        let simplified = g.simplified()
        #expect(simplified.ids.filter { simplified[$0].op == .dropoutMask }.count == 2)
        #expect(simplified.ids.filter { simplified[$0].op == .uniformNoise }.count == 2)
        #expect(simplified.ids.filter { if case .hyper = simplified[$0].op { return true }; return false }.count == 1, "the rate is one value")
    }

    /// Fractional max pooling draws u (n, C, 2) per forward pass, in training and (as PyTorch) in evaluation:
    /// the first training loss and predict's three batches against the interpreter given those draws.
    @Test func fractionalPoolingMatchesTheInterpreterOnTheTrainersSamples() throws {
        let model = try writeModel("fmp", Self.poolSource, in: Self.dir)
        let exe = try compileTrainer(model, into: Self.dir)
        let shape = [1, 8, 8]
        let d = try Self.data("fmp", shape)
        let forward = try Driver(tools: try Paths.toolchain()).evaluate(model.path)
        let (w, params) = try Self.weights(forward, "fmp_w")
        let train = forward.specialized(for: .train)
        let first = try Self.firstLoss(exe, d, init: w, ["--seed", "9"])
        var rng = RuntimeRandom(seed: 9, stream: 3)
        let want = try train.evaluate(inputs: Self.batch(d, 0..<4, shape), params: params,
                                      draws: Self.draws(train, batch: 4, &rng))[train.outputs[.loss]!]!.scalar
        #expect(close(first, want, rtol: 1e-5), "train: C \(first), interpreter \(want)")
        let fixed = try train.evaluate(inputs: Self.batch(d, 0..<4, shape), params: params,
                                       draws: Self.draws(train, batch: 4, &rng))[train.outputs[.loss]!]!.scalar
        #expect(fixed != want, "other samples, other regions")

        // predict: --batch 4 over 10 samples, each batch drawing its own u from the model's default seed (7).
        let probs = try Self.predict(exe, weights: w, input: d.x, "fmp_p")
        let eval = forward.specialized(for: .eval)
        var erng = RuntimeRandom(seed: 7, stream: 3)
        for range in [0..<4, 4..<8, 8..<10] {
            let logits = try eval.evaluate(inputs: Self.batch(d, range, shape), params: params,
                                           draws: Self.draws(eval, batch: range.count, &erng))[eval.outputs[.output]!]!
            Self.expectProbabilities(probs, logits, offset: range.lowerBound, "predict")
        }
        #expect(try Self.predict(exe, weights: w, input: d.x, "fmp_p2") == probs, "predict is reproducible")
        let a = try Self.losses(exe, d, ["--seed", "4"], "fa"), b = try Self.losses(exe, d, ["--seed", "4"], "fb")
        #expect(a == b && a.count == 6, "reproducible with a seed")
        let check = try Run.run(exe, ["gradcheck", "--train-x", d.x.path, "--train-y", d.y.path, "--samples", "6"])
        #expect(check.status == 0 && check.stdout.contains("gradcheck: passed"), "\(check.stdout)\(check.stderr)")
    }
}

/// runtime/rng.c's generator (xoshiro256** seeded through splitmix64 from seed + stream·φ), replayed so that a
/// test knows what the trainer's random ops drew.
struct RuntimeRandom {
    var s: [UInt64]

    init(seed: UInt64, stream: UInt64) {
        var x = seed &+ stream &* 0x9E37_79B9_7F4A_7C15
        s = (0..<4).map { _ in
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    mutating func next() -> UInt64 {
        func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
        let result = rotl(s[1] &* 5, 7) &* 9, t = s[1] << 17
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result
    }

    /// [0, 1) with 53 random bits, as nnrt_rng_uniform.
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
}
