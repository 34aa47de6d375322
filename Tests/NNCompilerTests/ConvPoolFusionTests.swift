import Foundation
import Testing

/// 2×2 max pooling in its convolution's calls (Program+FusePooling.swift, runtime/conv_pool.c): the schedule it
/// makes, and training with it against `--no-fusion`, which runs every op alone (the dense activation, the
/// pooling, its backward and the convolution's backward apart). The runtime's kernels are checked bit for bit
/// against the separate calls in runtime/tests/test_conv_pool.c; here the whole trainer: five Adam steps from the
/// same weights on the same data, the losses within 1e-6 relative and the weights within 1e-6 + 1e-5 relative
/// (the bias gradients add in another order), and the float64 gradient of the fused program against central
/// differences (its `_f64` calls).
@Suite(.serialized) struct ConvPoolFusionTests {
    /// A CNN with a ReLU between convolution and pooling (the mask goes with the window bytes), one without (the
    /// pooling reads the convolution's output), and one whose pooling cannot move (an odd size, 3×3 windows).
    static func source(_ kind: String) -> String {
        let second = kind == "odd" ? "Conv2d(4, 6, kernelSize: 2)\n ReLU()\n MaxPool2d(2)\n Flatten()\n Linear(6, 10)"
            : "Conv2d(4, 6, kernelSize: 3, padding: 1)\n ReLU()\n MaxPool2d(2)\n Flatten()\n Linear(24, 10)"
        return """
            import NNDSL
            let model = Sequential {
                Conv2d(1, 4, kernelSize: 3, padding: 1)
                \(kind == "noRelu" ? "" : "ReLU()")
                MaxPool2d(2)
                \(second)
            }
            train(model, input: [1, 8, 8], loss: .crossEntropy, optimizer: Adam(learningRate: 1e-2), batchSize: 4, epochs: 1)
            """
    }

    @Test(arguments: ["relu", "noRelu", "odd"])
    func fusedTrainsAsUnfused(kind: String) throws {
        let tmp = Paths.tempDir("conv_pool_" + kind)
        let model = try writeModel("cnn_" + kind, Self.source(kind), in: tmp)
        let fused = try compileTrainer(model, into: tmp), unfused = try compileTrainer(model, into: tmp, flags: ["--no-fusion"])

        // The schedule: the poolings in the convolutions' kernels, their backward with the convolutions' gradients.
        let dump = try Run.run(Paths.nncc, ["compile", model.path, "--emit=fused"])
        try #require(dump.status == 0, "\(dump.stderr)")
        let train = dump.stdout.components(separatedBy: "// eval program")[0]
        let headers = train.split(separator: "\n").filter { !$0.hasPrefix(" ") && !$0.hasPrefix("//") }
        let pooledForward = headers.filter { $0.contains("_conv2d_") && $0.contains("max_pool2d:") }
        let pooledBackward = headers.filter { $0.contains("_max_pool2d_grad_") && $0.contains("_conv2d_grad_") }
        let alone = headers.map { $0.split(separator: ":")[0] }.filter { $0.contains("_max_pool2d") && !$0.contains("conv2d") }
        switch kind {
        case "odd":   // 8×8 → 4×4 → 3×3 after the 2×2 convolution: the second pooling and its backward stay apart
            #expect(pooledForward.count == 1 && pooledBackward.count == 1 && alone.count == 2, "\(headers)")
        default:
            #expect(pooledForward.count == 2 && pooledBackward.count == 2 && alone.isEmpty, "\(headers)")
        }
        let plan = try Run.run(Paths.nncc, ["compile", model.path, "--emit=c"])
        #expect(plan.stdout.contains("nnrt_conv2d_forward_maxpool2(") && plan.stdout.contains("nnrt_conv2d_grad_weight_maxpool2(")
                    && plan.stdout.contains("unsigned char *"), "the trainer calls the fused runtime functions")

        let d = Paths.fixtures.appendingPathComponent("trajectory").path
        func run(_ exe: String, _ name: String) throws -> (losses: [Double], weights: [String: (shape: [Int], data: [Float])]) {
            let log = tmp.appendingPathComponent(name + ".jsonl"), saved = tmp.appendingPathComponent(name + ".safetensors")
            let r = try Run.run(exe, ["train", "--train-x", "\(d)/cnn_x.npy", "--train-y", "\(d)/cnn_y.npy", "--seed", "5",
                                      "--no-shuffle", "--log", log.path, "--log-every", "1", "--save", saved.path, "--quiet"])
            try #require(r.status == 0, "\(name): \(r.stderr)")
            let losses = try readJSONL(log).filter { $0["step"] != nil }.compactMap { $0["loss"] as? Double }
            return (losses, try readSafetensors(saved))
        }
        let a = try run(fused, "fused"), b = try run(unfused, "unfused")
        #expect(a.losses.count == 5 && a.losses.count == b.losses.count)
        for (i, (x, y)) in zip(a.losses, b.losses).enumerated() {
            #expect(abs(x - y) <= 1e-6 * abs(y), "\(kind) step \(i + 1): loss \(x) fused, \(y) unfused")
        }
        #expect(Set(a.weights.keys) == Set(b.weights.keys))
        for (name, w) in b.weights {
            let got = try #require(a.weights[name])
            let worst = zip(got.data, w.data).map { Double(abs($0 - $1)) - 1e-5 * Double(abs($1)) }.max() ?? 0
            #expect(worst <= 1e-6, "\(kind) \(name): fused differs from unfused by up to \(worst)")
        }
        let gc = try Run.run(fused, ["gradcheck"])
        #expect(gc.status == 0 && gc.stdout.contains("gradcheck: passed"), "\(kind): \(gc.stdout)\(gc.stderr)")
    }
}
