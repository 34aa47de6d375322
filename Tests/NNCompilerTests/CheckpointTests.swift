import Foundation
import Testing

/// Resumable checkpoints and the validation split on generated trainers: the residual example (BatchNorm counters,
/// Dropout drawing from ctx->rng, AdamW state, warmup + cosine driven by the step) trained 3 epochs straight and
/// 1 + 2 epochs through a checkpoint gives bit-identical weights and the same JSONL; bad checkpoints are one line.
@Suite(.serialized) struct CheckpointTests {
    static let work = Paths.tempDir("checkpoint")
    static let data: URL = {
        let d = work.appendingPathComponent("data")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        try? DataFiles.mnistFolder(d, train: 200, test: 60)
        return d
    }()
    static let resmlp: String = {
        (try? compileTrainer(Paths.examples.appendingPathComponent("fashion_mnist_resmlp.swiftnn"), into: work)) ?? "missing"
    }()

    func file(_ name: String) -> URL { Self.work.appendingPathComponent(name) }

    /// The JSONL without the wall-clock seconds of each epoch line.
    func metrics(_ url: URL) throws -> String {
        try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: #","seconds":[^}]*\}"#, with: "}", options: .regularExpression)
    }

    @Test func resumingIsBitIdentical() throws {
        let common = ["--data", Self.data.path, "--batch", "32", "--val-split", "0.1", "--report-test", "--log-every", "1", "--warmup", "3",
                      "--t-max", "12", "--quiet"]
        let straight = try Run.run(Self.resmlp, ["train"] + common + ["--epochs", "3", "--log", file("s.jsonl").path, "--save", file("s.st").path])
        try #require(straight.status == 0, "\(straight.stderr)")
        let first = try Run.run(Self.resmlp, ["train"] + common + ["--epochs", "1", "--log", file("r.jsonl").path,
                                                                   "--checkpoint", file("c.st").path, "--save", file("r1.st").path])
        try #require(first.status == 0, "\(first.stderr)")
        // The resumed run takes batch, split, hyperparameters and RNG state from the checkpoint; only --epochs is given.
        let rest = try Run.run(Self.resmlp, ["train", "--data", Self.data.path, "--report-test", "--resume", file("c.st").path, "--epochs", "3",
                                             "--log", file("r.jsonl").path, "--save", file("r.st").path])
        try #require(rest.status == 0, "\(rest.stderr)")
        #expect(rest.stdout.contains("resumed \(file("c.st").path): 1 of 3 epochs done, step 6"), "\(rest.stdout)")
        #expect(try Data(contentsOf: file("s.st")) == Data(contentsOf: file("r.st")), "bit-identical weights")
        #expect(try metrics(file("s.jsonl")) == metrics(file("r.jsonl")), "the same losses, rates and validation metrics")
        #expect(try Data(contentsOf: file("s.st")) != Data(contentsOf: file("r1.st")), "the resumed run did train")

        let epochs = try readJSONL(file("r.jsonl")).filter { $0["train_loss"] != nil }
        #expect(epochs.count == 3 && epochs.allSatisfy { $0["val_loss"] is Double && $0["val_acc"] is Double && $0["test_acc"] is Double })
        // The checkpoint is a safetensors file: the state_dict, AdamW's m and v per trainable parameter (torch's
        // exp_avg and exp_avg_sq) in its shape, and the sample order.
        let ck = try readSafetensors(file("c.st")), weights = try readSafetensors(file("r1.st"))
        let buffers = ["running_mean", "running_var", "num_batches_tracked"]
        let trainable = weights.keys.filter { k in !buffers.contains { k.hasSuffix($0) } }
        #expect(trainable.count > 0 && trainable.count < weights.count, "BatchNorm's buffers have no optimizer state")
        let slots = trainable.flatMap { ["optimizer.m.\($0)", "optimizer.v.\($0)"] }
        #expect(Set(ck.keys) == Set(weights.keys).union(slots).union(["train.order"]))
        for k in trainable { #expect(ck["optimizer.v.\(k)"]?.shape == weights[k]?.shape, "\(k)'s v in its shape") }
        #expect(ck["optimizer.v.0.weight"]?.data.contains { $0 != 0 } == true, "v after a step is not zero")
        #expect(ck["train.order"]?.shape == [180], "200 samples less the 10 % held out")
        for (k, w) in weights { #expect(ck[k]!.data == w.data, "\(k) as --save writes it") }
        // … and eval reads it as weights.
        let ev = try Run.run(Self.resmlp, ["eval", "--weights", file("c.st").path, "--data", Self.data.path])
        #expect(ev.status == 0 && ev.stdout.contains("test_acc"), "\(ev.stderr)")
    }

    @Test func badCheckpointsAreOneLine() throws {
        let mlp = try compileTrainer(Paths.examples.appendingPathComponent("fashion_mnist_mlp.swiftnn"), into: Self.work)
        let other = file("mlp.ckpt"), weights = file("w.st"), corrupt = file("corrupt.st")
        let a = try Run.run(mlp, ["train", "--data", Self.data.path, "--epochs", "1", "--quiet", "--checkpoint", other.path, "--save", weights.path])
        try #require(a.status == 0, "\(a.stderr)")
        try Data(try Data(contentsOf: other).prefix(500)).write(to: corrupt)
        let cases: [(URL, String)] = [
            (file("missing.st"), "missing.st: No such file or directory"),
            (corrupt, "corrupt.st: corrupt safetensors file (header length"),
            (weights, "w.st: not a checkpoint"),
            (other, "mlp.ckpt: checkpoint of model 'fashion_mnist_mlp' (235146 parameters"),
        ]
        for (ckpt, message) in cases {
            let out = file("never.st")
            let r = try Run.run(Self.resmlp, ["train", "--data", Self.data.path, "--resume", ckpt.path, "--save", out.path])
            #expect(r.status == 1 && r.stderr.hasPrefix("\(URL(fileURLWithPath: Self.resmlp).lastPathComponent): error: ") && r.stderr.contains(message), "\(ckpt.lastPathComponent): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out.path))
        }
    }

    @Test func validationSplitIsReported() throws {
        let log = file("v.jsonl")
        let r = try Run.run(Self.resmlp, ["train", "--data", Self.data.path, "--epochs", "2", "--batch", "50", "--val-split", "0.25", "--report-test",
                                          "--log", log.path, "--log-every", "1", "--verbose", "--quiet"])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("data: validation 50 samples") && r.stdout.contains("data: train 150 samples"), "\(r.stdout)")
        #expect(r.stdout.range(of: #"epoch 2/2  train_loss [0-9.]+  val_loss [0-9.]+  val_acc [0-9.]+  test_loss"#, options: .regularExpression) != nil)
        let lines = try readJSONL(log)
        #expect(lines.filter { $0["step"] != nil }.count == 2 * 3, "150 training samples at batch 50")
        let acc = lines.compactMap { $0["val_acc"] as? Double }
        #expect(acc.count == 2 && acc.allSatisfy { $0 >= 0 && $0 <= 1 && ($0 * 50).rounded() == $0 * 50 }, "a fraction of 50 samples: \(acc)")
        let bad = try Run.run(Self.resmlp, ["train", "--data", Self.data.path, "--val-split", "1.5"])
        #expect(bad.status == 2 && bad.stderr.contains("--val-split: expected a fraction in [0, 1)"), "\(bad.stderr)")
    }
}
