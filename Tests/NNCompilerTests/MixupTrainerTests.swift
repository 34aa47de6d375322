import Foundation
import Testing

/// `train --mixup` and `--cutmix` on a compiled CNN (the small model of CNNTrajectoryTests, input (1, 8, 8)): a fixed
/// seed reproduces the run bit for bit, mixing changes training and never evaluation, a λ of 0 or 1 (α → 0) gives
/// the plain batch loss (the soft-target step computes the hard one), bad uses are usage errors naming the flag, and
/// a checkpoint keeps the flags for a resumed run.
/// The mixing itself is checked against the NumPy reference in runtime/tests/unit_mixup.c.
@Suite(.serialized) struct MixupTrainerTests {
    static func trainLosses(_ lines: [String]) -> [Double] {
        lines.compactMap { l in
            l.range(of: #"train_loss [0-9.]+"#, options: .regularExpression).flatMap { Double(l[$0].dropFirst(11)) }
        }
    }

    @Test func mixedTrainingIsReproducibleAndLeavesEvaluationAlone() throws {
        let tmp = Paths.tempDir("mixup")
        let exe = try compileTrainer(try writeModel("cnn", CNNTrajectoryTests.source(batchNorm: false), in: tmp), into: tmp)
        let st = { (n: String) in tmp.appendingPathComponent("\(n).st") }
        for flags in [["--mixup", "0.4"], ["--cutmix", "1.0"], ["--mixup", "0.4", "--cutmix", "1.0"]] {
            let a = try trainCNNFixtureEpochs(exe, flags, save: st("a")), b = try trainCNNFixtureEpochs(exe, flags, save: st("b"))
            let same = try Data(contentsOf: st("a")) == Data(contentsOf: st("b"))
            #expect(a == b && same, "\(flags): the same seed gives the same run")
            _ = try trainCNNFixtureEpochs(exe, flags, save: st("c"), seed: 8)
            #expect(try Data(contentsOf: st("a")) != Data(contentsOf: st("c")), "\(flags): another seed, another run")
        }
        _ = try trainCNNFixtureEpochs(exe, [], save: st("plain"))
        _ = try trainCNNFixtureEpochs(exe, ["--mixup", "0"], save: st("zero"))
        #expect(try Data(contentsOf: st("plain")) == Data(contentsOf: st("zero")), "--mixup 0 is off")
        _ = try trainCNNFixtureEpochs(exe, ["--mixup", "0.4"], save: st("mixed"))
        #expect(try Data(contentsOf: st("plain")) != Data(contentsOf: st("mixed")), "--mixup changes training")

        // At --lr 0 the weights stay the init's: evaluation is the plain run's, the training loss is not. With
        // α = 1e-9, λ is 0 or 1 to double precision: the batch is itself or its flip, so the mean loss of the
        // soft-target step equals the plain step's (up to float summation order).
        let plain = try trainCNNFixtureEpochs(exe, ["--lr", "0"], save: st("p0"))
        let mixed = try trainCNNFixtureEpochs(exe, ["--lr", "0", "--mixup", "0.4"], save: st("m0"))
        let extreme = try trainCNNFixtureEpochs(exe, ["--lr", "0", "--mixup", "1e-9"], save: st("e0"))
        let strip = { (l: [String]) in l.map { $0.replacingOccurrences(of: #"train_loss [0-9.]+"#, with: "", options: .regularExpression) } }
        #expect(strip(mixed) == strip(plain) && mixed != plain, "evaluation unmixed, training mixed:\n\(mixed)\n\(plain)")
        let (lp, le) = (Self.trainLosses(plain), Self.trainLosses(extreme))
        #expect(lp.count == 3 && le.count == 3 && zip(lp, le).allSatisfy { abs($0 - $1) <= 1e-4 }, "\(lp) vs \(le)")

        let d = Paths.fixtures.appendingPathComponent("trajectory").path
        let data = ["--train-x", "\(d)/cnn_x.npy", "--train-y", "\(d)/cnn_y.npy"]
        let neg = try Run.run(exe, ["train"] + data + ["--mixup", "-0.5"])
        #expect(neg.status == 2 && neg.stderr.contains("--mixup: expected a non-negative number, got '-0.5'"), "\(neg.stderr)")
        let e = try Run.run(exe, ["eval", "--weights", st("a").path, "--cutmix", "1"])
        #expect(e.status == 2 && e.stderr.contains("flag '--cutmix' does not apply to 'eval'"), "\(e.stderr)")

        // Checkpoints keep --augment, --mixup and --cutmix: one epoch, then a resume to 3 that does not repeat them,
        // is the straight run of 3 bit for bit (runtime/tests/e2e_checkpoint.sh has the overrides and bad values).
        let all = ["--augment", "crop:1,flip", "--mixup", "0.4", "--cutmix", "1.0"]
        _ = try trainCNNFixtureEpochs(exe, all, save: st("straight"))
        let run = data + ["--test-x", "\(d)/cnn_x.npy", "--test-y", "\(d)/cnn_y.npy", "--seed", "7", "--quiet"]
        let first = try Run.run(exe, ["train"] + run + all + ["--epochs", "1", "--checkpoint", st("ck").path])
        try #require(first.status == 0, "\(first.stderr)")
        let rest = try Run.run(exe, ["train"] + run + ["--epochs", "3", "--resume", st("ck").path, "--save", st("resumed").path])
        try #require(rest.status == 0, "\(rest.stderr)")
        #expect(try Data(contentsOf: st("straight")) == Data(contentsOf: st("resumed")), "the resumed run keeps the data options")
    }

    @Test func modelsWithoutImagesOrCrossEntropyRefuse() throws {
        let tmp = Paths.tempDir("mixup_refuse")
        let d = Paths.fixtures.appendingPathComponent("trajectory").path
        let data = ["--train-x", "\(d)/cls_x.npy", "--train-y", "\(d)/cls_y.npy"]
        let flat = try compileTrainer(try writeModel("flat", """
            import NNDSL
            train(Sequential { Linear(20, 4) }, input: 20, loss: .crossEntropy, optimizer: SGD(learningRate: 0.1))
            """, in: tmp), into: tmp)
        let cut = try Run.run(flat, ["train"] + data + ["--cutmix", "1"])
        #expect(cut.status == 2 && cut.stderr.contains("--cutmix: model 'flat' takes 20 flat features, not images (C, H, W)"), "\(cut.stderr)")
        let mix = try Run.run(flat, ["train"] + data + ["--mixup", "0.2", "--epochs", "1", "--quiet"])
        #expect(mix.status == 0, "--mixup works on feature vectors: \(mix.stderr)")
        let hinge = try compileTrainer(try writeModel("hinge", """
            import NNDSL
            train(Sequential { Linear(20, 4) }, input: 20, loss: .hinge, optimizer: SGD(learningRate: 0.1))
            """, in: tmp), into: tmp)
        let h = try Run.run(hinge, ["train"] + data + ["--mixup", "0.2"])
        #expect(h.status == 2 && h.stderr.contains("--mixup: model 'hinge' has no soft-target training step"), "\(h.stderr)")
    }
}
