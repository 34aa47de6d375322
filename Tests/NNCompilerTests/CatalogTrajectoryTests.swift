import Foundation
import Testing

/// Issue 3's losses, penalties and activations in compiled trainers, from fixed weights in file order, against
/// the NumPy reference (`CATALOG` in Tests/Reference/reference.py, committed in trajectory/expected.json).
/// Same tolerances as `TrajectoryTests`: losses within 1e-4 relative, final weights within 1e-4 + 1e-3 relative.
@Suite(.serialized) struct CatalogTrajectoryTests {
    struct Case: CustomStringConvertible, Sendable {
        var tag: String          // key in expected.json
        var fusion = true
        var description: String { "\(tag)\(fusion ? "" : " --no-fusion")" }
    }

    static let cls = "Linear(20, 16); ReLU(); Linear(16, 12); Tanh(); Linear(12, 4)"
    /// tag: (layers, input features, loss, optimizer, extra train arguments, x file, y file, initial weights)
    static let models: [String: (String, Int, String, String, String, String, String, String)] = [
        "cls_hinge": (cls, 20, ".hinge", "SGD(learningRate: 0.1)", "", "cls_x", "cls_y", "cls"),
        "cls_hinge_lecture": (cls, 20, ".hinge(margin: 0.5, divideByClasses: false)", "SGD(learningRate: 0.1)", "",
                              "cls_x", "cls_y", "cls"),
        "cls_smooth": (cls, 20, ".crossEntropy(labelSmoothing: 0.1)", "Adam(learningRate: 0.01)", "", "cls_x", "cls_y", "cls"),
        "cls_l2": (cls, 20, ".crossEntropy", "SGD(learningRate: 0.05, momentum: 0.9)", ", penalty: .l2(0.01)",
                   "cls_x", "cls_y", "cls"),
        "cls_elastic": (cls, 20, ".crossEntropy", "SGD(learningRate: 0.1)", ", penalty: .elasticNet(l1: 0.002, l2: 0.005)",
                        "cls_x", "cls_y", "cls"),
        "reg_bce": ("Linear(6, 8); Sigmoid(); Linear(8, 2)", 6, ".binaryCrossEntropyWithLogits", "SGD(learningRate: 0.1)", "",
                    "reg_x", "bce_y", "reg"),
        "act": ("""
                Linear(20, 16); LeakyReLU(negativeSlope: 0.1); Linear(16, 12); ELU(alpha: 0.5); Linear(12, 12); GELU()
                    Linear(12, 8); GELU(approximate: .tanh); Linear(8, 6); Softmax(); Linear(6, 4); LogSoftmax()
                """, 20, ".crossEntropy", "Adam(learningRate: 0.01)", "", "cls_x", "cls_y", "act"),
    ]

    static let cases: [Case] = models.keys.sorted().map { Case(tag: $0) }
        + ["cls_hinge", "cls_smooth", "cls_l2", "reg_bce", "act"].map { Case(tag: $0, fusion: false) }

    static func source(_ tag: String) -> String {
        let m = models[tag]!
        return """
        import NNDSL
        let model = Sequential {
            \(m.0)
        }
        train(model, input: \(m.1), loss: \(m.2), optimizer: \(m.3), batchSize: 16, epochs: 3\(m.4))
        """
    }

    @Test(arguments: cases)
    func lossesAndWeightsMatchReference(_ c: Case) throws {
        let m = Self.models[c.tag]!
        let tmp = Paths.tempDir(c.tag)
        let exe = try compileTrainer(try writeModel(c.tag, Self.source(c.tag), in: tmp), into: tmp,
                                     flags: c.fusion ? [] : ["--no-fusion"])
        let (log, saved) = try trainFromFixture(exe, x: m.5, y: m.6, initial: m.7, in: tmp)

        let entry = try readJSON(TrajectoryTests.dir.appendingPathComponent("expected.json"))[c.tag] as! [String: Any]
        let ref = try #require(entry.first { $0.key != "model" }?.value as? [String: Any])
        try expectMatchesReference(log: log, saved: saved, reference: ref, "\(c)")
    }

    /// The penalty's coefficient is a run-time hyperparameter: `--l2 0` trains the plain cross-entropy model,
    /// whose first loss is the reference's unpenalized one.
    @Test func penaltyCoefficientIsAHyperparameter() throws {
        let tmp = Paths.tempDir("cls_l2_flag")
        let exe = try compileTrainer(try writeModel("cls_l2", Self.source("cls_l2"), in: tmp), into: tmp)
        let help = try Run.run(exe, ["train", "--help"])
        #expect(help.stdout.contains("--l2"), "train --help lists --l2: \(help.stdout)")
        let log = tmp.appendingPathComponent("m.jsonl")
        let d = TrajectoryTests.dir.path
        let r = try Run.run(exe, ["train", "--train-x", "\(d)/cls_x.npy", "--train-y", "\(d)/cls_y.npy", "--epochs", "1",
                                  "--init", "\(d)/cls_init.safetensors", "--no-shuffle", "--val-split", "0", "--log", log.path,
                                  "--log-every", "1", "--l2", "0", "--quiet"])
        try #require(r.status == 0, "train failed: \(r.stderr)")
        let first = try readJSONL(log).first { $0["step"] != nil }?["loss"] as? Double
        let expected = try readJSON(TrajectoryTests.dir.appendingPathComponent("expected.json"))
        let run = (expected["cls"] as! [String: Any])["sgd_momentum"] as! [String: Any]
        let plain = run["losses"] as! [Double]
        #expect(close(try #require(first), plain[0], rtol: 1e-4), "--l2 0 gives the unpenalized loss")
    }
}
