import Foundation
import Testing

/// `train --augment` on a compiled CNN (the small model of CNNTrajectoryTests, input (1, 8, 8)): it trains, a fixed
/// seed reproduces the run bit for bit, it changes what training sees and nothing evaluation sees, and a model with
/// flat features refuses it. The transforms themselves are checked against the NumPy reference in runtime/tests
/// (unit_augment.c, Tests/Fixtures/augment.json).
@Suite(.serialized) struct AugmentTrainerTests {
    static let list = "crop:2,flip,cutout:3,jitter:0.3"

    @Test func augmentedTrainingIsReproducibleAndLeavesEvaluationAlone() throws {
        let tmp = Paths.tempDir("augment")
        let exe = try compileTrainer(try writeModel("cnn", CNNTrajectoryTests.source(batchNorm: false), in: tmp), into: tmp)
        let a = tmp.appendingPathComponent("a.st"), b = tmp.appendingPathComponent("b.st"), p = tmp.appendingPathComponent("p.st")
        let linesA = try trainCNNFixtureEpochs(exe, ["--augment", Self.list], save: a)
        _ = try trainCNNFixtureEpochs(exe, ["--augment", Self.list], save: b)
        _ = try trainCNNFixtureEpochs(exe, [], save: p)
        #expect(linesA.count == 3)
        #expect(try Data(contentsOf: a) == Data(contentsOf: b), "the same seed gives the same weights")
        #expect(try Data(contentsOf: a) != Data(contentsOf: p), "--augment changes training")

        // At --lr 0 the weights stay the init's: the test metrics of every epoch are those of a run without
        // --augment, while the training loss, computed on augmented batches, is not.
        let z1 = tmp.appendingPathComponent("z1.st"), z2 = tmp.appendingPathComponent("z2.st")
        let aug = try trainCNNFixtureEpochs(exe, ["--augment", Self.list, "--lr", "0"], save: z1)
        let plain = try trainCNNFixtureEpochs(exe, ["--lr", "0"], save: z2)
        let strip = { (l: [String]) in l.map { $0.replacingOccurrences(of: #"train_loss [0-9.]+"#, with: "", options: .regularExpression) } }
        #expect(aug.count == 3 && aug.allSatisfy { $0.contains("test_loss") })
        #expect(strip(aug) == strip(plain), "evaluation differs:\n\(aug)\n\(plain)")
        #expect(aug != plain, "the training loss must see the augmented batches")
        #expect(try Data(contentsOf: z1) == Data(contentsOf: z2))

        let e = try Run.run(exe, ["eval", "--weights", a.path, "--augment", "flip"])
        #expect(e.status == 2 && e.stderr.contains("flag '--augment' does not apply to 'eval'"), "\(e.stderr)")
        let d = Paths.fixtures.appendingPathComponent("trajectory").path
        let bad = try Run.run(exe, ["train", "--train-x", "\(d)/cnn_x.npy", "--train-y", "\(d)/cnn_y.npy", "--augment", "crop:-1"])
        #expect(bad.status == 2 && bad.stderr.contains("--augment: crop:P expects the padding P, an integer in [1, 8]"), "\(bad.stderr)")
    }

    @Test func aFlatModelRefusesAugment() throws {
        let tmp = Paths.tempDir("augment_flat")
        let source = """
            import NNDSL
            let model = Sequential { Linear(20, 4) }
            train(model, input: 20, loss: .crossEntropy, optimizer: SGD(learningRate: 0.1), batchSize: 16, epochs: 1)
            """
        let exe = try compileTrainer(try writeModel("flat", source, in: tmp), into: tmp)
        let d = Paths.fixtures.appendingPathComponent("trajectory").path
        let r = try Run.run(exe, ["train", "--train-x", "\(d)/cls_x.npy", "--train-y", "\(d)/cls_y.npy", "--augment", "flip"])
        #expect(r.status == 2, "exit \(r.status)")
        #expect(r.stderr.contains("--augment: model 'flat' takes 20 flat features, not images (C, H, W)"), "\(r.stderr)")
    }
}
