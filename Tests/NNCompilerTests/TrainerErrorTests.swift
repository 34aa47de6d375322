import Foundation
import Testing

/// Bad input to a generated trainer: one clear line naming the file or flag, a non-zero exit, and no weights
/// file left behind. (runtime/tests covers the same paths on a hand-written model; this is the real thing.)
@Suite(.serialized) struct TrainerErrorTests {
    static let dir = Paths.tempDir("trainer_errors")
    static let trainer: String = {
        (try? compileTrainer(Paths.examples.appendingPathComponent("fashion_mnist_mlp.swiftnn"), into: dir)) ?? "missing"
    }()
    static let good: URL = {
        let d = dir.appendingPathComponent("good")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        try? DataFiles.mnistFolder(d, train: 20, test: 10)
        return d
    }()

    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var args: @Sendable (URL) throws -> [String]   // given a scratch folder
        var status: Int32
        var message: [String]
        var description: String { name }
    }

    static func file(_ d: URL, _ name: String) -> String { d.appendingPathComponent(name).path }
    static var g: String { good.path }

    static let cases: [Case] = [
        Case(name: "missing_file", args: { d in ["train", "--train-x", file(d, "nope.npy"), "--train-y", "\(g)/train-labels-idx1-ubyte"] },
             status: 1, message: ["nope.npy"]),
        Case(name: "truncated_idx", args: { d in
            try DataFiles.idx(d.appendingPathComponent("x.idx"), dims: [20, 28, 28], bytes: Array(repeating: 0, count: 100))
            return ["train", "--train-x", file(d, "x.idx"), "--train-y", "\(g)/train-labels-idx1-ubyte"]
        }, status: 1, message: ["x.idx", "truncated"]),
        Case(name: "wrong_magic_idx", args: { d in
            try DataFiles.idx(d.appendingPathComponent("x.idx"), dims: [20, 28, 28], bytes: Array(repeating: 0, count: 20 * 784), magic: 0x1234)
            return ["train", "--train-x", file(d, "x.idx"), "--train-y", "\(g)/train-labels-idx1-ubyte"]
        }, status: 1, message: ["x.idx"]),
        Case(name: "npy_wrong_dtype", args: { d in
            try DataFiles.npy(d.appendingPathComponent("x.npy"), descr: "<c8", shape: [20, 784], raw: Data(count: 20 * 784 * 8))
            return ["train", "--train-x", file(d, "x.npy"), "--train-y", "\(g)/train-labels-idx1-ubyte"]
        }, status: 1, message: ["x.npy", "<c8"]),
        Case(name: "npy_wrong_shape", args: { d in
            try DataFiles.npyF32(d.appendingPathComponent("x.npy"), shape: [20, 10], Array(repeating: 0, count: 200))
            return ["train", "--train-x", file(d, "x.npy"), "--train-y", "\(g)/train-labels-idx1-ubyte"]
        }, status: 1, message: ["x.npy", "784"]),
        Case(name: "ragged_csv", args: { d in
            let row = { (k: Int) in Array(repeating: "0.5", count: k).joined(separator: ",") + "\n" }
            try (row(784) + row(783)).write(to: d.appendingPathComponent("x.csv"), atomically: true, encoding: .utf8)
            return ["train", "--train-x", file(d, "x.csv"), "--train-y", "\(g)/train-labels-idx1-ubyte"]
        }, status: 1, message: ["x.csv:2", "784", "783"]),
        Case(name: "label_out_of_range", args: { d in
            try DataFiles.idx(d.appendingPathComponent("y.idx"), dims: [20], bytes: Array(repeating: 12, count: 20))
            return ["train", "--train-x", "\(g)/train-images-idx3-ubyte", "--train-y", file(d, "y.idx")]
        }, status: 1, message: ["y.idx", "12", "[0, 10)"]),
        Case(name: "safetensors_missing_key", args: { _ in
            ["train", "--data", g, "--init", Paths.fixtures.path + "/trajectory/reg_init.safetensors"]
        }, status: 1, message: ["reg_init.safetensors"]),
        Case(name: "safetensors_wrong_shape", args: { d in
            // The classifier fixture has 0.weight of shape (16, 20); this model needs (256, 784).
            ["train", "--data", g, "--init", Paths.fixtures.path + "/trajectory/cls_init.safetensors"]
        }, status: 1, message: ["cls_init.safetensors", "0.weight"]),
        Case(name: "unknown_flag", args: { _ in ["train", "--data", g, "--learning-rate", "0.1"] },
             status: 2, message: ["--learning-rate"]),
        Case(name: "bad_number", args: { _ in ["train", "--data", g, "--batch", "many"] },
             status: 2, message: ["--batch", "many"]),
        Case(name: "batch_over_maximum", args: { _ in ["train", "--data", g, "--batch", "5000"] },
             status: 2, message: ["--batch", "1024"]),
        // #17: values that were accepted with exit 0, files that were trusted, and a step gone non-finite
        Case(name: "epochs_zero", args: { _ in ["train", "--data", g, "--epochs", "0"] },
             status: 2, message: ["--epochs: expected a positive integer, got '0'"]),
        Case(name: "negative_lr", args: { _ in ["train", "--data", g, "--lr", "-0.1"] },
             status: 2, message: ["--lr: expected a number in [0, inf), got '-0.1'"]),
        Case(name: "beta_one", args: { _ in ["train", "--data", g, "--beta1", "1"] },
             status: 2, message: ["--beta1: expected a number in [0, 1), got '1'"]),
        Case(name: "flag_twice", args: { _ in ["train", "--data", g, "--epochs", "1", "--epochs", "2"] },
             status: 2, message: ["--epochs is given twice"]),
        Case(name: "missing_data_directory", args: { d in ["train", "--data", file(d, "nowhere")] },
             status: 1, message: ["nowhere: the directory does not exist"]),
        Case(name: "nan_in_data", args: { d in
            var x = [Float](repeating: 0.5, count: 20 * 784)
            x[3 * 784 + 7] = .nan
            try DataFiles.npyF32(d.appendingPathComponent("x.npy"), shape: [20, 784], x)
            return ["train", "--train-x", file(d, "x.npy"), "--train-y", "\(g)/train-labels-idx1-ubyte"]
        }, status: 1, message: ["x.npy: row 3, column 7 (counting from 0) is NaN"]),
        Case(name: "idx_header_asks_for_18_EB", args: { d in
            try Data([0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0, 1, 0, 0]).write(to: d.appendingPathComponent("x.idx"))
            return ["train", "--train-x", file(d, "x.idx"), "--train-y", "\(g)/train-labels-idx1-ubyte"]
        }, status: 1, message: ["x.idx: truncated file", "the file has 0 bytes left"]),
        Case(name: "checkpoint_batch_over_maximum", args: { d in
            // a checkpoint whose batch (1000, edited to 9999) is past the compiled maximum of 1024: resuming once
            // overflowed the arena in the GEMM
            let ck = d.appendingPathComponent("c.ck")
            let r = try Run.run(TrainerErrorTests.trainer, ["train", "--data", g, "--epochs", "1", "--batch", "1000", "--checkpoint", ck.path, "--quiet"])
            #expect(r.status == 0, "\(r.stderr)")
            var bytes = try Data(contentsOf: ck)
            let from = Data("\"batch\":\"1000\"".utf8), to = Data("\"batch\":\"9999\"".utf8)
            let at = try #require(bytes.range(of: from))
            bytes.replaceSubrange(at, with: to)
            try bytes.write(to: ck)
            return ["train", "--data", g, "--resume", ck.path, "--epochs", "2"]
        }, status: 1, message: ["c.ck: checkpoint field 'batch' is 9999, expected 1 to 1024 (this model's compiled maximum batch)"]),
        Case(name: "step_goes_non_finite", args: { _ in ["train", "--data", g, "--lr", "1e39", "--epochs", "1"] },
             status: 1, message: ["training diverged: at step 1", "0.weight", "was not written"]),
    ]

    @Test(arguments: cases)
    func failsClearlyAndWritesNothing(_ c: Case) throws {
        let d = Self.dir.appendingPathComponent(c.name)
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        let save = d.appendingPathComponent("w.safetensors")
        let r = try Run.run(Self.trainer, try c.args(d) + ["--save", save.path, "--quiet"])
        #expect(r.status == c.status, "exit \(r.status), stderr: \(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "one line, got: \(r.stderr)")
        for m in c.message { #expect(r.stderr.contains(m), "expected '\(m)' in: \(r.stderr)") }
        #expect(!FileManager.default.fileExists(atPath: save.path), "no partial weights file")
    }
}
