import Foundation
import Testing

/// Schedules in a compiled trainer: per-epoch stepping and command-line overrides, read from the JSONL `lr`
/// (printed with 9 significant digits, so compared to 1e-8 relative). Per-step schedules against the NumPy
/// reference run in TrajectoryTests (sgd_onecycle, adamw_warmup_cosine).
@Suite(.serialized) struct ScheduleTrainerTests {
    static let data = Paths.fixtures.appendingPathComponent("trajectory")

    /// Trains the regressor 3 epochs of 5 steps and returns (epoch, lr) of every step.
    func rates(_ tmp: URL, _ exe: String, _ flags: [String]) throws -> [(Int, Double)] {
        let log = tmp.appendingPathComponent("m\(flags.count).jsonl")
        let d = Self.data.path
        let r = try Run.run(exe, ["train", "--train-x", "\(d)/reg_x.npy", "--train-y", "\(d)/reg_y.npy", "--no-shuffle", "--val-split", "0",
                                  "--log", log.path, "--log-every", "1", "--quiet"] + flags)
        try #require(r.status == 0, "train failed: \(r.stderr)")
        return try readJSONL(log).filter { $0["step"] != nil }.map { ($0["epoch"] as! Int, $0["lr"] as! Double) }
    }

    @Test func perEpochStepDecayAndOverrides() throws {
        let tmp = Paths.tempDir("schedule_epoch")
        let model = try writeModel("reg_epoch", """
            import NNDSL
            let model = Sequential { Linear(6, 8); Sigmoid(); Linear(8, 2) }
            train(model, input: 6, loss: .mse, optimizer: SGD(learningRate: 0.1),
                  schedule: .stepDecay(every: 1, gamma: 0.5), schedulePer: .epoch, batchSize: 16, epochs: 3)
            """, in: tmp)
        let exe = try compileTrainer(model, into: tmp)
        // The JSONL epoch is 1-based; during epoch e (0-based) the rate is 0.1·0.5^e.
        let plain = try rates(tmp, exe, [])
        #expect(plain.count == 15)
        for (epoch, lr) in plain {
            #expect(close(lr, 0.1 * Foundation.pow(0.5, Double(epoch - 1)), rtol: 1e-8), "epoch \(epoch): lr \(lr)")
        }
        // --gamma and --step-size (step_size) change the logged rate without recompiling.
        for (epoch, lr) in try rates(tmp, exe, ["--gamma", "0.1", "--step-size", "2", "--lr", "0.3"]) {
            #expect(close(lr, epoch <= 2 ? 0.3 : 0.03, rtol: 1e-8), "overridden, epoch \(epoch): lr \(lr)")
        }
    }

    @Test func warmupCosineOverrides() throws {
        let tmp = Paths.tempDir("schedule_step")
        let model = try writeModel("reg_cosine", """
            import NNDSL
            let model = Sequential { Linear(6, 8); Sigmoid(); Linear(8, 2) }
            train(model, input: 6, loss: .mse, optimizer: AdamW(learningRate: 0.01),
                  schedule: .warmup(3, then: .cosine(tMax: 10)), batchSize: 16, epochs: 3)
            """, in: tmp)
        let exe = try compileTrainer(model, into: tmp)
        // --warmup 0 --t-max 14 --eta-min 0.001: plain cosine from 0.01 to 0.001 over the 15 steps.
        let got = try rates(tmp, exe, ["--warmup", "0", "--t-max", "14", "--eta-min", "0.001"]).map(\.1)
        #expect(got.count == 15)
        for (t, lr) in got.enumerated() {
            let e = 0.001 + 0.009 * (1 + cos(Double.pi * Double(t) / 14)) / 2
            #expect(close(lr, e, rtol: 1e-8), "t = \(t): lr \(lr), expected \(e)")
        }
    }
}
