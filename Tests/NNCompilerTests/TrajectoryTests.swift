import Foundation
import Testing

/// Trains small models from fixed weights in file order and compares every step's loss, and the final weights,
/// with the NumPy reference (Tests/Reference/reference.py, committed as Tests/Fixtures/trajectory/expected.json).
///
/// Tolerances: losses within 1e-4 relative (the trainer is float32, the reference float64); final weights within
/// 1e-4 absolute + 1e-3 relative.
@Suite(.serialized) struct TrajectoryTests {
    static let dir = Paths.fixtures.appendingPathComponent("trajectory")

    struct Case: CustomStringConvertible, Sendable {
        var model: String      // "cls" or "reg"
        var optimizer: String  // key in expected.json
        var fusion = true
        var description: String { "\(model)/\(optimizer)\(fusion ? "" : " --no-fusion")" }
    }

    static let cases: [Case] = ["cls", "reg"].flatMap { m in
        ["sgd", "sgd_momentum", "sgd_nesterov", "adam"].map { Case(model: m, optimizer: $0) }
    } + [Case(model: "cls", optimizer: "adam", fusion: false), Case(model: "reg", optimizer: "sgd_momentum", fusion: false)]
        + newOptimizers.map { Case(model: "cls", optimizer: $0.key) }
        + ["sgd_velocity", "adam_wd", "adamw", "adagrad", "rmsprop_centered_momentum", "sgd_onecycle"].map {
            Case(model: "reg", optimizer: $0)
        } + [Case(model: "cls", optimizer: "rmsprop_centered_momentum", fusion: false)]

    /// Issue 3's optimizers and schedules (Tests/Reference/optim.py `MLP_RUNS`): the DSL spelling of each.
    static let newOptimizers: KeyValuePairs<String, String> = [
        "sgd_momentum_wd": "SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 0.05)",
        "sgd_velocity": "SGD(learningRate: 0.05, momentum: 0.9, momentumForm: .velocity)",
        "sgd_velocity_nesterov": "SGD(learningRate: 0.05, momentum: 0.9, nesterov: true, momentumForm: .velocity)",
        "adam_wd": "Adam(learningRate: 0.01, weightDecay: 0.1)",
        "adamw": "AdamW(learningRate: 0.01, weightDecay: 0.1)",
        "adam_amsgrad": "Adam(learningRate: 0.01, betas: (0.9, 0.9), amsgrad: true)",
        "adagrad": "AdaGrad(learningRate: 0.05, lrDecay: 0.01, weightDecay: 0.01)",
        "adagrad_initial": "AdaGrad(learningRate: 0.05, initialAccumulatorValue: 0.1)",
        "rmsprop": "RMSProp(learningRate: 0.001)",
        "rmsprop_centered_momentum": "RMSProp(learningRate: 0.001, alpha: 0.9, weightDecay: 0.01, momentum: 0.5, centered: true)",
        "sgd_onecycle": "SGD(learningRate: 0.05, momentum: 0.9), schedule: .oneCycle(totalSteps: 15)",
        "adamw_warmup_cosine": "AdamW(learningRate: 0.01, weightDecay: 0.01), schedule: .warmup(3, then: .cosine(tMax: 10))",
    ]

    static func source(_ c: Case) -> String {
        let optimizer = switch c.optimizer {
        case "sgd": "SGD(learningRate: 0.1)"
        case "sgd_momentum": "SGD(learningRate: 0.05, momentum: 0.9)"
        case "sgd_nesterov": "SGD(learningRate: 0.05, momentum: 0.9, nesterov: true)"
        case "adam": "Adam(learningRate: 0.01, betas: (0.9, 0.999), eps: 1e-8)"
        default: newOptimizers.first { $0.key == c.optimizer }!.value
        }
        let (layers, input, loss) = c.model == "cls"
            ? ("Linear(20, 16); ReLU(); Linear(16, 12); Tanh(); Linear(12, 4)", 20, ".crossEntropy")
            : ("Linear(6, 8); Sigmoid(); Linear(8, 2)", 6, ".mse")
        return """
        import NNDSL
        let model = Sequential { \(layers) }
        train(model, input: \(input), loss: \(loss), optimizer: \(optimizer), batchSize: 16, epochs: 3)
        """
    }

    @Test(arguments: cases)
    func lossesAndWeightsMatchReference(_ c: Case) throws {
        let tmp = Paths.tempDir("\(c.model)_\(c.optimizer)")
        let model = try writeModel("\(c.model)_\(c.optimizer)", Self.source(c), in: tmp)
        let exe = try compileTrainer(model, into: tmp, flags: c.fusion ? [] : ["--no-fusion"])
        let (log, saved) = try trainFromFixture(exe, x: "\(c.model)_x", y: "\(c.model)_y", initial: c.model, in: tmp)

        let expected = try readJSON(Self.dir.appendingPathComponent("expected.json"))
        let ref = (expected[c.model] as! [String: Any])[c.optimizer] as! [String: Any]
        try expectMatchesReference(log: log, saved: saved, reference: ref, "\(c)")
    }

    /// Loss and outputs at the initial weights, through `eval` and `predict`.
    @Test func evalAndPredictAtInitialWeights() throws {
        let tmp = Paths.tempDir()
        let exe = try compileTrainer(try writeModel("cls_adam", Self.source(Case(model: "cls", optimizer: "adam")), in: tmp), into: tmp)
        let d = Self.dir.path
        let r = try Run.run(exe, ["eval", "--weights", "\(d)/cls_init.safetensors", "--test-x", "\(d)/cls_x.npy",
                                  "--test-y", "\(d)/cls_y.npy"])
        try #require(r.status == 0, "eval failed: \(r.stderr)")
        let ref = (try readJSON(Self.dir.appendingPathComponent("expected.json"))["cls"] as! [String: Any])["eval_initial"] as! [String: Any]
        let loss = try #require(Double(r.stdout.split(separator: " ").drop { $0 != "test_loss" }.dropFirst().first ?? ""),
                                "no test_loss in '\(r.stdout)'")
        #expect(close(loss, ref["loss"] as! Double, rtol: 0, atol: 5e-5), "eval prints 4 decimals")
        #expect(r.stdout.contains(String(format: "%.4f", ref["accuracy"] as! Double)), "accuracy in '\(r.stdout)'")
    }
}
