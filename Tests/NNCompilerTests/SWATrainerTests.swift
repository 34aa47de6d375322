import Foundation
import Testing

/// `train --swa-start E --swa-lr LR` (stochastic weight averaging) and `train --snapshots K` (snapshot ensembles)
/// on a compiled model with BatchNorm, SGD and a per-step cosine schedule (runtime/swa.c, the generated
/// `update_bn` and the `lr_override` the schedule yields to): the average against the mean of the per-epoch
/// weights, update_bn against the NumPy reference (Tests/Reference/reference_update_bn.py), resuming mid-SWA (with
/// the SWA flags and without: the checkpoint keeps them), the
/// annealed switch (--swa-anneal-epochs) against SWALR's closed form, the snapshot files, their learning rates
/// against the closed form and their ensemble, and every bad value.
@Suite(.serialized) struct SWATrainerTests {
    static let source = """
        import NNDSL
        let model = Sequential { BatchNorm(20); Linear(20, 16); ReLU(); Linear(16, 4) }
        train(model, input: 20, loss: .crossEntropy, optimizer: SGD(learningRate: 0.1, momentum: 0.9),
              schedule: .cosine(tMax: 40), batchSize: 4, epochs: 5, seed: 3)
        """
    static let stepsPerEpoch = 18   // 70 samples in batches of 4
    static let swa = ["--swa-start", "3", "--swa-lr", "0.05"]

    /// One trainer for every test of the suite (compiling it is the slow part), each test in a folder of its own.
    static let trainer = Result { () throws -> String in
        let dir = Paths.tempDir("swa_trainer")
        return try compileTrainer(try writeModel("swa_bn", source, in: dir), into: dir)
    }
    let tmp = Paths.tempDir("swa")
    let exe: String
    init() throws { exe = try Self.trainer.get() }

    func file(_ name: String) -> URL { tmp.appendingPathComponent(name) }

    @discardableResult
    func train(_ extra: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> Run {
        let d = Paths.fixtures.appendingPathComponent("trajectory").path
        let r = try Run.run(exe, ["train", "--train-x", "\(d)/cls_x.npy", "--train-y", "\(d)/cls_y.npy",
                                  "--test-x", "\(d)/cls_x.npy", "--test-y", "\(d)/cls_y.npy", "--val-split", "0"] + extra)
        try #require(r.status == 0, "train \(extra): \(r.stderr)", sourceLocation: sourceLocation)
        return r
    }

    /// The learning rate of each logged step (--log-every 1), by step.
    func rates(_ log: URL) throws -> [Int: Double] {
        var out: [Int: Double] = [:]
        for o in try readJSONL(log) { if let s = o["step"] as? Int, let lr = o["lr"] as? Double { out[s] = lr } }
        return out
    }

    @Test func swaAveragesTheEpochsAndRecomputesBatchNorm() throws {
        // The raw weights after epochs 3, 4 and 5 of the SWA run: the checkpoints of runs that stop there.
        var raw: [[String: (shape: [Int], data: [Float])]] = []
        for k in 3...5 {
            try train(Self.swa + ["--epochs", "\(k)", "--checkpoint", file("ck\(k).st").path, "--save", file("s\(k).st").path,
                                  "--log", file("l\(k).jsonl").path, "--log-every", "1", "--quiet"])
            raw.append(try readSafetensors(file("ck\(k).st")))
        }
        let saved = try readSafetensors(file("s5.st"))
        for key in ["1.weight", "1.bias", "2.weight", "2.bias", "0.weight", "0.bias"] where saved[key] != nil {
            let got = saved[key]!.data
            for i in got.indices {
                let mean = raw.map { Double($0[key]!.data[i]) }.reduce(0, +) / 3
                #expect(abs(Double(got[i]) - mean) <= 1e-6 + 1e-6 * abs(mean), "\(key)[\(i)]: \(got[i]) vs mean \(mean)")
            }
        }
        #expect(saved["1.weight"]!.data != raw[2]["1.weight"]!.data, "--save writes the average, not the last weights")

        // update_bn: the BatchNorm sees the inputs, so its statistics are the data's (NumPy reference).
        let ref = try readJSON(Paths.fixtures.appendingPathComponent("update_bn.json"))["4"] as! [String: Any]
        #expect(saved["0.num_batches_tracked"]!.data == [Float(ref["batches"] as! Int)])
        for (key, name) in [("0.running_mean", "running_mean"), ("0.running_var", "running_var")] {
            let want = ref[name] as! [Double], got = saved[key]!.data
            for i in want.indices {
                #expect(abs(Double(got[i]) - want[i]) <= 2e-6 + 2e-6 * abs(want[i]), "\(key)[\(i)]: \(got[i]) vs \(want[i])")
            }
        }

        // The learning rate: the schedule's for epochs 1–2, --swa-lr from epoch 3 on.
        let lr = try rates(file("l5.jsonl"))
        #expect(lr.count == 5 * Self.stepsPerEpoch)
        for (t, v) in lr {
            let want = t > 2 * Self.stepsPerEpoch ? 0.05 : 0.05 * (1 + cos(Double.pi * Double(t - 1) / 40))
            #expect(abs(v - want) <= 1e-8 * want, "step \(t): lr \(v), expected \(want)")  // the log prints 9 digits
        }
        let end = try readJSONL(file("l5.jsonl")).compactMap { $0["swa"] as? [String: Any] }
        #expect(end.count == 1 && end[0]["epochs"] as? Int == 3 && end[0]["test_acc"] is Double, "\(end)")
    }

    @Test func resumingMidSWAGivesTheSameWeights() throws {
        try train(Self.swa + ["--epochs", "5", "--save", file("full.st").path, "--quiet"])
        try train(Self.swa + ["--epochs", "4", "--checkpoint", file("half.ck").path, "--quiet"])
        try train(Self.swa + ["--resume", file("half.ck").path, "--epochs", "5", "--save", file("resumed.st").path, "--quiet"])
        #expect(try Data(contentsOf: file("full.st")) == Data(contentsOf: file("resumed.st")))
        let ck = try readSafetensors(file("half.ck"))
        #expect(ck["swa.weights"] != nil, "the checkpoint carries the average")
        // The checkpoint keeps the SWA flags too: resumed without them, the same weights.
        let bare = try train(["--resume", file("half.ck").path, "--epochs", "5", "--save", file("bare.st").path])
        #expect(try Data(contentsOf: file("full.st")) == Data(contentsOf: file("bare.st")))
        #expect(bare.stdout.contains("resumed with the checkpoint's --swa-start 3 --swa-lr 0.05 ("), "\(bare.stdout)")
        // (a checkpoint inside the annealing comes from a job killed mid-run: runtime/tests/e2e_options.sh, on the toy)
        // another --swa-start once the checkpoint has averaged is refused, naming both
        let d = Paths.fixtures.appendingPathComponent("trajectory").path
        let r = try Run.run(exe, ["train", "--train-x", "\(d)/cls_x.npy", "--train-y", "\(d)/cls_y.npy", "--val-split", "0",
                                  "--resume", file("half.ck").path, "--swa-start", "4"])
        #expect(r.status == 2 && r.stderr.contains("--swa-start 4: the checkpoint \(file("half.ck").path) has averaged 2 epochs from --swa-start 3 on"),
                "exit \(r.status): \(r.stderr)")
    }

    @Test func annealingFollowsSWALRsCosineOncePerEpoch() throws {
        // --swa-anneal-epochs 2 from epoch 3: every step of epoch 3 at the schedule's rate of its first step (step 37),
        // epoch 4 at a·0.05 + (1 − a)·that rate with a = (1 − cos(π/2))/2, epoch 5 at --swa-lr (torch's
        // SWALR(anneal_epochs=2), stepped after each epoch from 3 on).
        try train(Self.swa + ["--swa-anneal-epochs", "2", "--save", file("a.st").path, "--log", file("a.jsonl").path,
                              "--log-every", "1", "--quiet"])
        let lr = try rates(file("a.jsonl")), s = Self.stepsPerEpoch
        let cosine = { (t: Int) in 0.05 * (1 + cos(Double.pi * Double(t - 1) / 40)) }
        let from = cosine(2 * s + 1), a = (1 - cos(Double.pi / 2)) / 2
        #expect(lr.count == 5 * s)
        for (t, v) in lr {
            let epoch = (t - 1) / s + 1
            let want = epoch < 3 ? cosine(t) : epoch == 3 ? from : epoch == 4 ? 0.05 * a + from * (1 - a) : 0.05
            #expect(abs(v - want) <= 1e-8 * want, "step \(t): lr \(v), expected \(want)")  // the log prints 9 digits
        }
        // K = 0 is the switch at once, bit for bit the run without the flag.
        try train(Self.swa + ["--swa-anneal-epochs", "0", "--save", file("k0.st").path, "--quiet"])
        try train(Self.swa + ["--save", file("plain.st").path, "--quiet"])
        #expect(try Data(contentsOf: file("k0.st")) == Data(contentsOf: file("plain.st")))
        #expect(try Data(contentsOf: file("a.st")) != Data(contentsOf: file("plain.st")), "the annealing changes the run")
    }

    @Test func snapshotsFollowTheCyclicCosineAndEnsemble() throws {
        let w = file("w.safetensors")
        let r = try train(["--snapshots", "2", "--epochs", "4", "--save", w.path, "--log", file("snap.jsonl").path,
                           "--log-every", "1"])
        #expect(r.stdout.contains("snapshot 2 of 2: \(file("w.snap2.safetensors").path)"), "\(r.stdout)")
        let files = try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.hasPrefix("w.snap") }.sorted()
        #expect(files == ["w.snap1.safetensors", "w.snap2.safetensors"])
        #expect(try Data(contentsOf: file("w.snap2.safetensors")) == Data(contentsOf: w), "the last snapshot is the final weights")
        // Two cycles of 2 epochs (36 steps): lr/2·(1 + cos(π·u/36)), u the step's place in its cycle.
        let lr = try rates(file("snap.jsonl")), L = 2 * Self.stepsPerEpoch
        #expect(lr.count == 4 * Self.stepsPerEpoch)
        for (t, v) in lr {
            let want = 0.05 * (1 + cos(Double.pi * Double((t - 1) % L) / Double(L)))
            #expect(abs(v - want) <= 1e-8 * want, "step \(t): lr \(v), expected \(want)")  // the log prints 9 digits
        }
        // Three cycles over 4 epochs end at epochs 1, 2 and 4 (boundaries ⌊c·4/3⌋).
        let w3 = file("k3.safetensors")
        try train(["--snapshots", "3", "--epochs", "4", "--save", w3.path, "--log", file("k3.jsonl").path, "--log-every", "1", "--quiet"])
        let lr3 = try rates(file("k3.jsonl")), s = Self.stepsPerEpoch
        for (t, v) in lr3 {
            let (start, len) = t <= s ? (0, s) : t <= 2 * s ? (s, s) : (2 * s, 2 * s)
            #expect(abs(v - 0.05 * (1 + cos(Double.pi * Double(t - 1 - start) / Double(len)))) <= 1e-8 * v, "step \(t): lr \(v)")
        }
        #expect(FileManager.default.fileExists(atPath: file("k3.snap3.safetensors").path))

        // predict --weights a,b averages the members' probabilities.
        let x = Paths.fixtures.appendingPathComponent("trajectory/cls_x.npy").path
        let members = ["w.snap1.safetensors", "w.snap2.safetensors"].map { file($0).path }
        var outs: [[[Double]]] = []
        for (i, weights) in (members + [members.joined(separator: ",")]).enumerated() {
            let out = file("p\(i).csv")
            let p = try Run.run(exe, ["predict", "--weights", weights, "--input", x, "--output", out.path])
            try #require(p.status == 0, "\(p.stderr)")
            outs.append(try String(contentsOf: out, encoding: .utf8).split(separator: "\n").dropFirst()
                .map { $0.split(separator: ",").map { Double($0)! } })
        }
        #expect(outs[2].count == 70)
        for i in outs[2].indices {
            for j in outs[2][i].indices {
                let mean = (outs[0][i][j] + outs[1][i][j]) / 2
                #expect(abs(outs[2][i][j] - mean) <= 1e-6, "sample \(i) class \(j): \(outs[2][i][j]) vs \(mean)")
            }
        }
    }

    @Test(arguments: [
        (["--swa-start", "6", "--swa-lr", "0.05"], "--swa-start 6: past the last epoch (--epochs 5)"),
        (["--swa-start", "2", "--swa-lr", "0"], "--swa-lr"),
        (["--swa-start", "2", "--swa-lr", "-1"], "--swa-lr"),
        (["--swa-start", "2"], "--swa-start: needs --swa-lr LR too"),
        (["--swa-lr", "0.1"], "--swa-lr: needs --swa-start E too"),
        (["--swa-start", "2", "--swa-lr", "0.1", "--swa-anneal-epochs", "5"],
         "--swa-anneal-epochs 5: the annealing epochs 2-6 run past the last epoch (--epochs 5)"),
        (["--swa-start", "2", "--swa-lr", "0.1", "--swa-anneal-epochs", "-1"], "--swa-anneal-epochs: expected a non-negative integer"),
        (["--swa-anneal-epochs", "2"], "--swa-anneal-epochs: needs --swa-start E and --swa-lr LR"),
        (["--snapshots", "0", "--save", "w.st"], "--snapshots 0: turns a checkpoint's snapshot ensemble off at --resume only"),
        (["--swa-start", "0", "--swa-lr", "0.1"], "--swa-start 0: turns a checkpoint's SWA off at --resume only"),
        (["--snapshots", "6", "--save", "w.st"], "--snapshots 6: more cycles than epochs (--epochs 5)"),
        (["--snapshots", "2"], "--snapshots: needs --save W"),
        (["--snapshots", "2", "--save", "w.st", "--swa-start", "2", "--swa-lr", "0.1"], "--snapshots: not with --swa-start"),
    ])
    func badValuesAreUsageErrors(flags: [String], message: String) throws {
        let d = Paths.fixtures.appendingPathComponent("trajectory").path
        let r = try Run.run(exe, ["train", "--train-x", "\(d)/cls_x.npy", "--train-y", "\(d)/cls_y.npy", "--quiet"] + flags,
                            cwd: tmp)
        #expect(r.status == 2, "\(flags): exit \(r.status)")
        #expect(r.stderr.contains(message), "\(flags): \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: file("w.st").path), "no partial output")
    }
}
