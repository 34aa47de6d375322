import Foundation
import Testing

/// The generated Fashion-MNIST trainer, end to end on tiny data in the MNIST layout: train, the JSONL log, the
/// weights file's PyTorch names and layouts, eval, predict and gradcheck.
@Suite(.serialized) struct TrainerTests {
    static let work = Paths.tempDir("trainer")
    static let trainer: String = {
        (try? compileTrainer(Paths.examples.appendingPathComponent("fashion_mnist_mlp.swiftnn"), into: work)) ?? "missing"
    }()
    static let data: URL = {
        let d = work.appendingPathComponent("data")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        try? DataFiles.mnistFolder(d, train: 300, test: 100)
        return d
    }()

    @Test func trainsLogsAndSavesPyTorchWeights() throws {
        let log = Self.work.appendingPathComponent("m.jsonl"), w = Self.work.appendingPathComponent("w.safetensors")
        let r = try Run.run(Self.trainer, ["train", "--data", Self.data.path, "--epochs", "3", "--batch", "64", "--report-test",
                                           "--log", log.path, "--log-every", "1", "--save", w.path, "--lr", "0.003"])
        try #require(r.status == 0, "\(r.stderr)")
        let lines = try readJSONL(log)
        let steps = lines.filter { $0["step"] != nil }, epochs = lines.filter { $0["train_loss"] != nil }
        #expect(steps.count == 3 * 5, "300 samples at batch 64: 4 full batches and a partial one of 44, per epoch")
        #expect(steps.allSatisfy { ($0["lr"] as? Double) == 0.003 }, "--lr overrides the DSL's 1e-3")
        #expect(epochs.count == 3)
        let acc = try #require(epochs.last?["test_acc"] as? Double)
        #expect(acc >= 0 && acc <= 1)
        #expect((epochs.last!["train_loss"] as! Double) < (epochs.first!["train_loss"] as! Double), "training makes progress")
        #expect(r.stdout.contains("epoch 3/3") && r.stdout.contains("test_acc"), "\(r.stdout)")

        let weights = try readSafetensors(w)
        let shapes: [String: [Int]] = ["0.weight": [256, 784], "0.bias": [256], "2.weight": [128, 256], "2.bias": [128],
                                       "4.weight": [10, 128], "4.bias": [10]]
        #expect(Set(weights.keys) == Set(shapes.keys), "exactly nn.Sequential's state_dict keys")
        for (k, s) in shapes { #expect(weights[k]?.shape == s, "\(k)") }

        let ev = try Run.run(Self.trainer, ["eval", "--weights", w.path, "--data", Self.data.path])
        #expect(ev.status == 0 && ev.stdout.contains(String(format: "test_acc %.4f", acc)), "eval agrees with training's last epoch: \(ev.stdout) \(ev.stderr)")
    }

    @Test func predictWritesProbabilities() throws {
        let x = Self.work.appendingPathComponent("x.npy"), y = Self.work.appendingPathComponent("p.npy")
        var rng = TestRandom(seed: 5)
        try DataFiles.npyF32(x, shape: [7, 784], (0..<(7 * 784)).map { _ in Float(rng.next() % 256) / 255 })
        let w = Self.work.appendingPathComponent("init.safetensors")
        _ = try Run.run(Self.trainer, ["train", "--data", Self.data.path, "--epochs", "1", "--save", w.path, "--quiet"])
        let ok = try Run.run(Self.trainer, ["predict", "--weights", w.path, "--input", x.path, "--output", y.path])
        try #require(ok.status == 0, "\(ok.stderr)")
        let raw = try Data(contentsOf: y)
        let headerLen = Int(raw[8]) | Int(raw[9]) << 8
        let probs = raw.subdata(in: (10 + headerLen)..<raw.count).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(probs.count == 7 * 10)
        for i in 0..<7 { #expect(abs(probs[(i * 10)..<(i * 10 + 10)].reduce(0, +) - 1) < 1e-5, "row \(i) sums to 1") }
    }

    @Test func gradcheckPassesOnTheExample() throws {
        let r = try Run.run(Self.trainer, ["gradcheck"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("gradcheck: passed"))
        for p in ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"] { #expect(r.stdout.contains(p)) }
    }

    /// The trainer runs OpenBLAS with the kernels for this CPU, not the Prescott fallback (BENCHMARKS.md).
    @Test func verboseNamesTheBlasCore() throws {
        let t = try Run.run(Self.trainer, ["train", "--data", Self.data.path, "--epochs", "1", "--verbose", "--quiet"],
                            env: ["OPENBLAS_CORETYPE": "", "OPENBLAS_VERBOSE": "2"])
        #expect(t.status == 0, "\(t.stderr)")
        let all = t.stdout + t.stderr
        #expect(all.contains("blas: OpenBLAS"), "\(all)")
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if cpu.contains("avx512f") && cpu.contains("avx512bw") && cpu.contains("avx512vl") {
            #expect(all.contains("core SkylakeX"), "an AVX-512 machine gets SkylakeX kernels: \(all)")
            #expect(!all.contains("Prescott"))
        }
    }

    /// The residual example (BatchNorm, Dropout, AdamW, warmup + cosine) compiles and passes gradcheck, and
    /// one short epoch on tiny data logs a rising then decaying learning rate.
    @Test func residualExampleTrainsAndPassesGradcheck() throws {
        let exe = try compileTrainer(Paths.examples.appendingPathComponent("fashion_mnist_resmlp.swiftnn"), into: Self.work)
        let g = try Run.run(exe, ["gradcheck"])
        #expect(g.status == 0 && g.stdout.contains("gradcheck: passed"), "\(g.stdout)\(g.stderr)")
        let log = Self.work.appendingPathComponent("res.jsonl")
        let r = try Run.run(exe, ["train", "--data", Self.data.path, "--epochs", "1", "--batch", "32", "--val-split", "0", "--log", log.path,
                                  "--log-every", "1", "--warmup", "4", "--t-max", "5", "--quiet"])
        try #require(r.status == 0, "\(r.stderr)")
        let lrs = try readJSONL(log).compactMap { $0["step"] != nil ? $0["lr"] as? Double : nil }
        #expect(lrs.count == 10, "300 samples at batch 32")
        #expect(zip(lrs.prefix(4), lrs.dropFirst().prefix(3)).allSatisfy { $0 < $1 }, "warmup rises: \(lrs)")
        #expect(abs(lrs[3] - 2e-3) < 1e-9, "warmup ends at the base rate: \(lrs)")
        #expect(zip(lrs.dropFirst(4), lrs.dropFirst(5)).allSatisfy { $0 >= $1 }, "cosine decays: \(lrs)")
    }

    /// The OpenBLAS path (what a CPU without AVX-512 runs, or NNRT_GEMM=blas) trains the generated MLP like
    /// nncc's own kernels: the same losses within float32 summation-order differences (1e-5 relative).
    @Test func openBLASFallbackTrainsAlike() throws {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        guard cpu.contains("avx512vl") && cpu.contains("avx512dq") else { return }   // only OpenBLAS here: nothing to compare
        var logs: [[Double]] = []
        for gemm in ["nnrt", "blas"] {
            let log = Self.work.appendingPathComponent("gemm-\(gemm).jsonl")
            let r = try Run.run(Self.trainer, ["train", "--data", Self.data.path, "--epochs", "2", "--batch", "32", "--val-split", "0", "--verbose",
                                               "--log", log.path, "--log-every", "1", "--quiet"], env: ["NNRT_GEMM": gemm])
            try #require(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains(gemm == "blas" ? "gemm: OpenBLAS cblas_sgemm" : "gemm: nnrt's AVX-512 kernels"), "\(r.stdout)")
            logs.append(try readJSONL(log).compactMap { $0["step"] != nil ? $0["loss"] as? Double : nil })
        }
        #expect(logs[0].count == 20 && logs[0].count == logs[1].count)
        #expect(zip(logs[0], logs[1]).allSatisfy { close($0, $1, rtol: 1e-5) }, "\(logs)")
        #expect(logs[0] != logs[1], "the two paths really differ (summation order), so the comparison means something")
    }

    /// --profile's per-kernel table: every timed call of train_step by name (a pair as one), slowest first, and
    /// in the JSONL the same seconds, which add up to the per-kind totals (each call adds one duration to both).
    @Test func profileTimesEachKernel() throws {
        let log = Self.work.appendingPathComponent("prof.jsonl")
        let r = try Run.run(Self.trainer, ["train", "--data", Self.data.path, "--epochs", "1", "--batch", "32", "--profile",
                                           "--log", log.path, "--quiet"])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("train_step, call by call (slowest first)"), "\(r.stdout)")
        for name in ["k_h1_matmul_add_relu", "k_dh4_softmax_ce_softmax_ce_grad", "k_dh0_matmul_step_mul_sum_batch + k_dW2_matmul",
                     "k_adam_update"] {
            #expect(r.stdout.contains("    " + name + " "), "\(name) in \(r.stdout)")
        }
        let prof = try #require(try readJSONL(log).compactMap { $0["profile"] as? [String: Any] }.first)
        let kernels = try #require(prof["kernels_s"] as? [String: Double])
        #expect(kernels.count == 10, "\(kernels.keys.sorted())")
        let kinds = ["gemm_s", "elementwise_s", "rowwise_s", "optimizer_s"].compactMap { prof[$0] as? Double }.reduce(0, +)
        let sum = kernels.values.reduce(0, +)
        #expect(kinds > 0 && abs(sum - kinds) <= 1e-6 * kinds, "per kernel \(sum) vs per kind \(kinds) (each printed to 9 digits)")
    }

    /// The residual MLP has BatchNorm, Dropout and four pairs of backward GEMMs that run side by side (dX ∥ dW):
    /// one thread or two, the same losses, step by step.
    @Test func residualMLPTrainsExactlyAlikeOnOneAndTwoThreads() throws {
        let model = Paths.examples.appendingPathComponent("fashion_mnist_resmlp.swiftnn")
        let c = try Run.run(Paths.nncc, ["compile", model.path, "--emit", "c"])
        #expect(c.stdout.components(separatedBy: "side by side */").count - 1 == 4, "four pairs")
        let exe = try compileTrainer(model, into: Self.work)
        var logs: [[Double]] = []
        for t in ["1", "2"] {
            let log = Self.work.appendingPathComponent("res\(t).jsonl")
            let r = try Run.run(exe, ["train", "--data", Self.data.path, "--epochs", "2", "--threads", t, "--log", log.path,
                                      "--log-every", "1", "--quiet"])
            try #require(r.status == 0, "\(r.stderr)")
            logs.append(try readJSONL(log).compactMap { $0["step"] != nil ? $0["loss"] as? Double : nil })
        }
        #expect(logs[0] == logs[1] && logs[0].count == 6, "\(logs)")
    }

    /// The second thread changes nothing but the time: large GEMMs split into chunks of rows or columns and the
    /// optimizer loop into chunks of its range compute every element exactly as one thread does, whichever thread
    /// runs a chunk, so the logs are identical.
    @Test func twoThreadsTrainExactlyLikeOne() throws {
        var logs: [[Double]] = []
        for t in ["1", "2"] {
            let log = Self.work.appendingPathComponent("threads\(t).jsonl")
            let r = try Run.run(Self.trainer, ["train", "--data", Self.data.path, "--epochs", "2", "--batch", "32", "--threads", t,
                                               "--log", log.path, "--log-every", "1", "--verbose", "--quiet"])
            try #require(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("threads: \(t) for the kernels"), "\(r.stdout)")
            logs.append(try readJSONL(log).compactMap { $0["loss"] as? Double ?? $0["train_loss"] as? Double })
        }
        #expect(logs[0] == logs[1] && logs[0].count > 10, "--threads 1 and 2 log the same losses")
        let c = try Run.run(Paths.nncc, ["compile", Paths.examples.appendingPathComponent("fashion_mnist_mlp.swiftnn").path, "--emit", "c"])
        #expect(c.stdout.contains("nnrt_par2(pair_dh0_dW2,"), "dX2 and dW2 run side by side")
        let bad = try Run.run(Self.trainer, ["train", "--data", Self.data.path, "--threads", "3"])
        #expect(bad.status == 2 && bad.stderr.contains("--threads"), "\(bad.stderr)")
    }

    /// Without a terminal there is no bar: plain progress lines at most every 10 s (here every few µs, through
    /// NNRT_PROGRESS_SECONDS), and none at all with --quiet or for a run shorter than the interval.
    @Test func plainProgressLinesWithoutATerminal() throws {
        let args = ["train", "--data", Self.data.path, "--epochs", "1", "--batch", "32"]
        let fast = try Run.run(Self.trainer, args, env: ["NNRT_PROGRESS_SECONDS": "0.000001"])
        #expect(fast.status == 0)
        let lines = fast.stderr.split(separator: "\n")
        #expect(lines.count >= 3 && lines.allSatisfy { $0.hasPrefix("epoch 1/1  step ") && $0.contains("loss ") },
                "\(fast.stderr)")
        #expect(!fast.stderr.contains("\r"), "no carriage returns in a file")
        #expect(try Run.run(Self.trainer, args, env: ["NNRT_PROGRESS_SECONDS": "0.000001"] ).stdout.contains("epoch 1/1"))
        let quiet = try Run.run(Self.trainer, args + ["--quiet"], env: ["NNRT_PROGRESS_SECONDS": "0.000001"])
        #expect(quiet.stderr.isEmpty, "\(quiet.stderr)")
        #expect(try Run.run(Self.trainer, args).stderr.isEmpty, "a short run prints only its summary")
    }

    /// A penalty is part of the training loss, not of the evaluation's: the same weights evaluate to the same
    /// test loss in the trainer of the model with the penalty and in the one without it, the epoch's test_loss and
    /// val_loss are that criterion alone (as `eval` prints it), while the first step's loss is higher by the
    /// penalty of the initial weights (both start from the same seeded init).
    @Test func penaltyIsInTheTrainingLossOnly() throws {
        let source = { (penalty: String) in """
            import NNDSL
            let model = Sequential { Linear(784, 32); ReLU(); Linear(32, 10) }
            train(model, input: 784, loss: .crossEntropy, optimizer: SGD(learningRate: 0.05), batchSize: 64,
                  epochs: 1\(penalty))
            """ }
        let with = try compileTrainer(try writeModel("pen_on", source(", penalty: .l2(0.05)"), in: Self.work), into: Self.work)
        let without = try compileTrainer(try writeModel("pen_off", source(""), in: Self.work), into: Self.work)
        var firstLoss: [Double] = []
        var saved: URL? = nil, epochLine: [String: Any] = [:]
        for (exe, name) in [(with, "on"), (without, "off")] {
            let log = Self.work.appendingPathComponent("pen_\(name).jsonl"), w = Self.work.appendingPathComponent("pen_\(name).safetensors")
            try? FileManager.default.removeItem(at: log)
            let r = try Run.run(exe, ["train", "--data", Self.data.path, "--val-split", "0.2", "--report-test", "--log", log.path,
                                      "--log-every", "1", "--save", w.path, "--quiet"])
            try #require(r.status == 0, "\(r.stderr)")
            let lines = try readJSONL(log)
            firstLoss.append(try #require(lines.first { $0["step"] != nil }?["loss"] as? Double))
            if name == "on" { saved = w; epochLine = try #require(lines.first { $0["train_loss"] != nil }) }
        }
        #expect(firstLoss[0] > firstLoss[1] + 1e-3, "the first step's loss includes the penalty: \(firstLoss)")
        let testLoss = { (exe: String) throws -> String in
            let r = try Run.run(exe, ["eval", "--weights", saved!.path, "--data", Self.data.path])
            try #require(r.status == 0, "\(r.stderr)")
            return r.stdout
        }
        let a = try testLoss(with), b = try testLoss(without)
        #expect(a == b, "the same weights, the same test loss with and without the penalty: \(a) vs \(b)")
        let logged = try #require(epochLine["test_loss"] as? Double)
        #expect(a.hasPrefix(String(format: "test_loss %.4f", logged)), "the epoch's test_loss is eval's: \(logged) vs \(a)")
        #expect(epochLine["val_loss"] is Double)
    }

    /// Split kernels with fused epilogues compute what the unfused build computes. With an L2 penalty, the first
    /// layer's weight-gradient GEMM (256×784) carries the penalty's gradient in its epilogue and is split across
    /// the threads; the unfused build has no epilogues and no such split. Tolerance 1e-5 relative (the fused
    /// loops round differently).
    @Test func splitKernelsWithEpiloguesMatchTheUnfusedBuild() throws {
        let model = try writeModel("penalized", """
            import NNDSL
            let model = Sequential { Linear(784, 256); ReLU(); Linear(256, 10) }
            train(model, input: 784, loss: .crossEntropy, optimizer: Adam(learningRate: 1e-3), batchSize: 128,
                  epochs: 1, penalty: .l2(1e-3))
            """, in: Self.work)
        let fused = try compileTrainer(model, into: Self.work), unfused = try compileTrainer(model, into: Self.work, flags: ["--no-fusion"])
        let c = try Run.run(Paths.nncc, ["compile", model.path, "--emit", "c"])
        #expect(c.stdout.contains("chunk c of its rows"), "the penalized weight gradient is split")
        var logs: [[Double]] = []
        for (exe, t) in [(fused, "1"), (fused, "2"), (unfused, "1")] {
            let log = Self.work.appendingPathComponent("pen\(logs.count).jsonl")
            let r = try Run.run(exe, ["train", "--data", Self.data.path, "--no-shuffle", "--threads", t, "--log", log.path,
                                      "--log-every", "1", "--quiet"])
            try #require(r.status == 0, "\(r.stderr)")
            logs.append(try readJSONL(log).compactMap { $0["step"] != nil ? $0["loss"] as? Double : nil })
        }
        #expect(logs[0] == logs[1], "one and two threads")
        #expect(logs[0].count == 3 && zip(logs[0], logs[2]).allSatisfy { close($0, $1, rtol: 1e-5) }, "fused \(logs[0]) vs unfused \(logs[2])")
    }
}
