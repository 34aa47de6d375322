import Foundation
import Testing
@testable import NNCompiler

/// Mistakes in a model file are reported at model.swiftnn:line:col with a non-zero exit, never a stack trace.
@Suite struct CompileErrorTests {
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var source: String
        var expected: [String]   // substrings of stderr
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "shape_mismatch", source: """
            import NNDSL
            let model = Sequential {
                Linear(784, 256)
                ReLU()
                Linear(128, 10)
            }
            train(model, input: 784, loss: .crossEntropy, optimizer: Adam())
            """, expected: ["shape_mismatch.swiftnn:5:", "Linear(128, 10) expects input (n,128), got (n,256)"]),
        Case(name: "flatten_mismatch", source: """
            import NNDSL
            let model = Sequential {
                Conv2d(1, 8, kernelSize: 3, padding: 1)
                MaxPool2d(2)
                Flatten()
                Linear(8 * 7 * 7, 10)
            }
            train(model, input: [1, 28, 28], loss: .crossEntropy, optimizer: Adam())
            """, expected: ["flatten_mismatch.swiftnn:6:", "Linear(392, 10) expects input (n,392), got (n,1568)"]),
        Case(name: "conv_channels", source: """
            import NNDSL
            let model = Sequential { Conv2d(1, 8, kernelSize: 3); Conv2d(4, 8, kernelSize: 3) }
            train(model, input: [1, 28, 28], loss: .mse, optimizer: Adam())
            """, expected: ["conv_channels.swiftnn:2:", "expects 4 input channels, got an input (n,8,26,26)"]),
        Case(name: "kernel_too_large", source: """
            import NNDSL
            let model = Sequential { Conv2d(1, 8, kernelSize: 5); MaxPool2d(2); Conv2d(8, 8, kernelSize: 13) }
            train(model, input: [1, 28, 28], loss: .mse, optimizer: Adam())
            """, expected: ["kernel_too_large.swiftnn:2:", "a 13x13 kernel (stride 1x1) does not fit the input (n,8,12,12)"]),
        Case(name: "aux_negative_weight", source: """
            import NNDSL
            let x = Input(4)
            let main = Linear(4, 3, name: "head")(x)
            let aux = Linear(4, 3, name: "aux")(x)
            train(loss: crossEntropy(main) + -0.3 * crossEntropy(aux), optimizer: Adam())
            """, expected: ["aux_negative_weight.swiftnn:5:", "the weight of the loss term at 5:", "must be a finite number ≥ 0, got -0.3"]),
        Case(name: "aux_nan_weight", source: """
            import NNDSL
            let x = Input(4)
            let main = Linear(4, 3, name: "head")(x)
            let aux = Linear(4, 3, name: "aux")(x)
            train(loss: crossEntropy(main) + Double.nan * crossEntropy(aux), optimizer: Adam())
            """, expected: ["aux_nan_weight.swiftnn:5:", "must be a finite number ≥ 0, got nan"]),
        Case(name: "aux_head_shape", source: """
            import NNDSL
            let x = Input(4)
            let main = Linear(4, 3, name: "head")(x)
            let aux = Linear(4, 5, name: "aux")(x)
            train(loss: crossEntropy(main) + 0.3 * crossEntropy(aux), optimizer: Adam())
            """, expected: ["aux_head_shape.swiftnn:5:", "an auxiliary head must have the main head's shape (n,3), got (n,5)"]),
        Case(name: "aux_mixed_targets", source: """
            import NNDSL
            let x = Input(4)
            let main = Linear(4, 3, name: "head")(x)
            let aux = Linear(4, 3, name: "aux")(x)
            train(loss: crossEntropy(main) + 0.3 * Loss.mse(aux), optimizer: Adam())
            """, expected: ["aux_mixed_targets.swiftnn:5:", "takes dense targets but the main head's loss takes class labels"]),
        Case(name: "bad_kernel_size", source: """
            import NNDSL
            let model = Sequential { Conv2d(1, 8, kernelSize: 0) }
            train(model, input: [1, 28, 28], loss: .mse, optimizer: Adam())
            """, expected: ["bad_kernel_size.swiftnn:2:", "the kernel size must be positive"]),
        Case(name: "bad_groups", source: """
            import NNDSL
            let model = Sequential { Conv2d(6, 8, kernelSize: 3, groups: 4) }
            train(model, input: [6, 8, 8], loss: .mse, optimizer: Adam())
            """, expected: ["bad_groups.swiftnn:2:", "groups 4 must divide both channel counts"]),
        Case(name: "conv_on_vectors", source: """
            import NNDSL
            let model = Sequential { Conv2d(1, 8, kernelSize: 3) }
            train(model, input: 784, loss: .mse, optimizer: Adam())
            """, expected: ["conv_on_vectors.swiftnn:2:", "Conv2d(1, 8, kernelSize: 3) expects images (n,C,H,W), got (n,784)"]),
        Case(name: "pool_too_large", source: """
            import NNDSL
            let model = Sequential { MaxPool2d(kernelSize: 5, padding: 3) }
            train(model, input: [1, 8, 8], loss: .mse, optimizer: Adam())
            """, expected: ["pool_too_large.swiftnn:2:", "padding 3x3 must be at most half the kernel 5x5"]),
        Case(name: "bad_input_shape", source: """
            import NNDSL
            let model = Sequential { Flatten(); Linear(784, 10) }
            train(model, input: [28, 28], loss: .crossEntropy, optimizer: Adam())
            """, expected: ["bad_input_shape.swiftnn:3:", "[features] or [channels, height, width]; got [28, 28]"]),
        Case(name: "swift_type_error", source: """
            import NNDSL
            let model = Sequential { Linear(4, "two") }
            train(model, input: 4, loss: .mse, optimizer: SGD(learningRate: 0.1))
            """, expected: ["swift_type_error.swiftnn:2:", "error:"]),
        Case(name: "bad_argument", source: """
            import NNDSL
            let model = Sequential { Linear(4, 2) }
            train(model, input: 4, loss: .mse, optimizer: SGD(learningRate: -1))
            """, expected: ["bad_argument.swiftnn:3:", "SGD learningRate must be positive, got -1.0"]),
        Case(name: "bad_schedule", source: """
            import NNDSL
            let model = Sequential { Linear(4, 2) }
            train(model, input: 4, loss: .mse, optimizer: AdamW(),
                  schedule: .warmup(5, then: .cosine(tMax: 0)))
            """, expected: ["bad_schedule.swiftnn:4:", "cosine tMax must be at least 1, got 0"]),
        Case(name: "bad_optimizer_argument", source: """
            import NNDSL
            let model = Sequential { Linear(4, 2) }
            train(model, input: 4, loss: .mse, optimizer: RMSProp(alpha: 1.5))
            """, expected: ["bad_optimizer_argument.swiftnn:3:", "RMSProp alpha must be in [0, 1), got 1.5"]),
        Case(name: "lbfgs_history", source: """
            import NNDSL
            let model = Sequential { Linear(4, 1) }
            train(model, input: 4, loss: .mse, optimizer: LBFGS(historySize: 0))
            """, expected: ["lbfgs_history.swiftnn:3:", "LBFGS historySize must be at least 1, got 0"]),
        Case(name: "lbfgs_learning_rate", source: """
            import NNDSL
            let model = Sequential { Linear(4, 1) }
            train(model, input: 4, loss: .mse, optimizer: LBFGS(learningRate: -1))
            """, expected: ["lbfgs_learning_rate.swiftnn:3:", "LBFGS learningRate must be positive, got -1.0"]),
        Case(name: "lbfgs_schedule", source: """
            import NNDSL
            let model = Sequential { Linear(4, 1) }
            train(model, input: 4, loss: .mse, optimizer: LBFGS(lineSearch: .strongWolfe),
                  schedule: .cosine(tMax: 10))
            """, expected: ["lbfgs_schedule.swiftnn:3:", "LBFGS takes no learning-rate schedule"]),
        Case(name: "unknown_activation", source: """
            import NNDSL
            let model = Sequential { Linear(4, 2); Swish() }
            train(model, input: 4, loss: .mse, optimizer: SGD(learningRate: 0.1))
            """, expected: ["unknown_activation.swiftnn:2:", "Swish"]),
        Case(name: "no_train_call", source: """
            import NNDSL
            let model = Sequential { Linear(4, 2) }
            """, expected: ["no_train_call.swiftnn: the model file never calls train"]),
        Case(name: "bad_batch", source: """
            import NNDSL
            let model = Sequential { Linear(4, 2) }
            train(model, input: 4, loss: .mse, optimizer: Adam(), batchSize: 0)
            """, expected: ["bad_batch.swiftnn:3:", "error: batchSize must be at least 1, got 0"]),
        Case(name: "output_not_matrix", source: """
            import NNDSL
            let x = Input(4)
            let h = Linear(4, 3)(x) + Linear(4, 2)(x)
            train(h, loss: .mse, optimizer: Adam())
            """, expected: ["output_not_matrix.swiftnn:3:", "cannot broadcast shapes (n,3) and (n,2)"]),
        Case(name: "bad_label_smoothing", source: """
            import NNDSL
            let model = Sequential { Linear(4, 2) }
            train(model, input: 4, loss: .crossEntropy(labelSmoothing: 1.5), optimizer: Adam())
            """, expected: ["bad_label_smoothing.swiftnn:3:", "crossEntropy labelSmoothing must be in [0, 1], got 1.5"]),
        Case(name: "bad_margin", source: """
            import NNDSL
            let model = Sequential { Linear(4, 2) }
            train(model, input: 4,
                  loss: .hinge(margin: -1), optimizer: Adam())
            """, expected: ["bad_margin.swiftnn:4:", "hinge margin must be a finite number ≥ 0, got -1.0"]),
        Case(name: "bad_penalty", source: """
            import NNDSL
            let model = Sequential { Linear(4, 2) }
            train(model, input: 4, loss: .mse, optimizer: Adam(),
                  penalty: .l2(-0.1))
            """, expected: ["bad_penalty.swiftnn:4:", "penalty coefficient l2 must be a finite number ≥ 0, got -0.1"]),
        Case(name: "penalty_unknown_parameter", source: """
            import NNDSL
            let model = Sequential { Linear(4, 3); ReLU(); Linear(3, 2) }
            train(model, input: 4, loss: .mse, optimizer: Adam(),
                  penalty: .l1(0.1, on: .named(["1.weight"])))
            """, expected: ["penalty_unknown_parameter.swiftnn:4:",
                            "the penalty names parameter '1.weight', which the model does not have (it has 0.weight, 0.bias, 2.weight, 2.bias)"]),
        Case(name: "bad_leaky_slope", source: """
            import NNDSL
            let model = Sequential { Linear(4, 2); LeakyReLU(negativeSlope: .infinity) }
            train(model, input: 4, loss: .mse, optimizer: Adam())
            """, expected: ["bad_leaky_slope.swiftnn:2:", "LeakyReLU negativeSlope must be a finite number, got inf"]),
        // #17: a model past the size limit is refused when it is compiled, with its size, not when the trainer starts
        Case(name: "huge_linear", source: """
            import NNDSL
            let model = Sequential { Linear(784, 1 << 40) }
            train(model, input: 784, loss: .crossEntropy, optimizer: Adam())
            """, expected: ["huge_linear.swiftnn:2:", "error: parameter '0.weight' of shape (1099511627776, 784) takes 3448068.5 GB, "
                            + "more than nncc's limit of 2147483647 float32 values (8.6 GB, the generated C's 32-bit indices)"]),
        Case(name: "huge_linear_overflow", source: """
            import NNDSL
            let model = Sequential { Linear(1 << 40, 1 << 40) }
            train(model, input: 1 << 40, loss: .mse, optimizer: SGD(learningRate: 0.1))
            """, expected: ["huge_linear_overflow.swiftnn:2:", "parameter '0.weight' of shape (1099511627776, 1099511627776) takes"]),
        Case(name: "huge_total", source: """
            import NNDSL
            let model = Sequential { Linear(40000, 40000); Linear(40000, 40000) }
            train(model, input: 40000, loss: .mse, optimizer: SGD(learningRate: 0.1))
            """, expected: ["huge_total.swiftnn:2:", "error: the parameters take 12.8 GB with '1.weight' of shape (40000, 40000), more than nncc's limit"]),
        Case(name: "huge_arena", source: """
            import NNDSL
            let model = Sequential { Linear(4, 100000); ReLU(); Linear(100000, 2) }
            train(model, input: 4, loss: .mse, optimizer: SGD(learningRate: 0.1), maxBatch: 100000)
            """, expected: ["error: huge_arena.swiftnn: the activations of train take", "at the maximum batch of 100000, more than nncc's limit"]),
        // #19's layers
        Case(name: "drop_connect_rate", source: """
            import NNDSL
            let model = Sequential { Linear(4, 8); ReLU(); DropConnect(1.5, Linear(8, 2)) }
            train(model, input: 4, loss: .crossEntropy, optimizer: Adam())
            """, expected: ["drop_connect_rate.swiftnn:2:", "DropConnect probability must be in [0, 1), got 1.5"]),
        Case(name: "stochastic_depth_rate", source: """
            import NNDSL
            let model = Sequential { Linear(4, 4); Residual { Linear(4, 4); StochasticDepth(-0.1) }; Linear(4, 2) }
            train(model, input: 4, loss: .crossEntropy, optimizer: Adam())
            """, expected: ["stochastic_depth_rate.swiftnn:2:", "StochasticDepth probability must be in [0, 1), got -0.1"]),
        Case(name: "fractional_ratio_zero", source: """
            import NNDSL
            let model = Sequential { Conv2d(1, 4, kernelSize: 3); FractionalMaxPool2d(outputRatio: 0) }
            train(model, input: [1, 28, 28], loss: .mse, optimizer: Adam())
            """, expected: ["fractional_ratio_zero.swiftnn:2:", "FractionalMaxPool2d outputRatio must be in (0, 1), got 0"]),
        Case(name: "fractional_too_small", source: """
            import NNDSL
            let model = Sequential { Conv2d(1, 4, kernelSize: 3); FractionalMaxPool2d(kernelSize: 4, outputRatio: 0.9) }
            train(model, input: [1, 6, 6], loss: .mse, optimizer: Adam())
            """, expected: ["fractional_too_small.swiftnn:2:", "FractionalMaxPool2d: 3 outputs along the height need an input of at least 6, got 4 (kernelSize 4)"]),
        Case(name: "fractional_on_vectors", source: """
            import NNDSL
            let model = Sequential { Linear(4, 8); FractionalMaxPool2d(outputRatio: 0.5) }
            train(model, input: 4, loss: .mse, optimizer: Adam())
            """, expected: ["fractional_on_vectors.swiftnn:2:", "FractionalMaxPool2d expects images (n,C,H,W), got (n,8)"]),
    ]

    @Test(arguments: cases)
    func reportsAtTheModelFile(_ c: Case) throws {
        let dir = Paths.tempDir(c.name)
        let model = try writeModel(c.name, c.source, in: dir)
        let r = try Run.run(Paths.nncc, ["compile", model.path, "-o", dir.appendingPathComponent("out").path])
        #expect(r.status == 1, "exit status \(r.status), stderr: \(r.stderr)")
        for e in c.expected { #expect(r.stderr.contains(e), "expected '\(e)' in: \(r.stderr)") }
        #expect(!r.stderr.contains("Stack dump") && !r.stderr.contains("Fatal error"), "a crash: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path), "no trainer is written")
    }

    @Test func missingModelFile() throws {
        let r = try Run.run(Paths.nncc, ["compile", "/nonexistent/model.swiftnn"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/nonexistent/model.swiftnn: cannot read the model file"), "\(r.stderr)")
    }

    @Test func unknownStageAndFlag() throws {
        let model = Paths.examples.appendingPathComponent("sine_regression.swiftnn").path
        let a = try Run.run(Paths.nncc, ["compile", model, "--emit", "assembly"])
        #expect(a.status != 0)
        #expect(a.stderr.contains("--emit") && a.stderr.contains("assembly"), "\(a.stderr)")
        let b = try Run.run(Paths.nncc, ["compile", model, "--fuse-harder"])
        #expect(b.status != 0)
        #expect(b.stderr.contains("--fuse-harder"), "\(b.stderr)")
    }

    /// A machine without OpenBLAS's or zlib's development files gets told which package to install, not an
    /// internal error. The texts are what clang 21, GNU ld and lld print.
    @Test func missingSystemLibraryNamesThePackage() {
        let header = Driver.missingPackage("""
            /root/.cache/nncc/work/build-96f5/model.c:5:10: fatal error: 'cblas.h' file not found
                5 | #include <cblas.h>
                  |          ^~~~~~~~~
            1 error generated.
            """)
        #expect(header?.contains("install libopenblas-dev") == true, "\(header ?? "nil")")
        #expect(header?.contains("clang said: /root/.cache/nncc/work/build-96f5/model.c:5:10: fatal error: 'cblas.h' file not found") == true)
        let ld = Driver.missingPackage("/usr/bin/ld: cannot find -lopenblas: No such file or directory\nclang: error: linker command failed with exit code 1 (use -v to see invocation)")
        #expect(ld?.contains("install libopenblas-dev") == true && ld?.contains("cannot find -lopenblas") == true)
        #expect(Driver.missingPackage("ld.lld: error: unable to find library -lopenblas")?.contains("libopenblas-dev") == true)
        #expect(Driver.missingPackage("data.c:12:10: fatal error: 'zlib.h' file not found")?.contains("install zlib1g-dev") == true)
        #expect(Driver.missingPackage("/usr/bin/ld: cannot find -lz: No such file or directory")?.contains("zlib1g-dev") == true)
        #expect(Driver.missingPackage("ld.lld: error: unable to find library -lz")?.contains("zlib1g-dev") == true)
        #expect(Driver.missingPackage("ld.lld: error: unable to find library -lzstd") == nil)
        #expect(Driver.missingPackage("png.c:3:10: fatal error: 'png.h' file not found")?.contains("install libpng-dev") == true)
        #expect(Driver.missingPackage("/usr/bin/ld: cannot find -lpng: No such file or directory")?.contains("libpng-dev") == true)
        #expect(Driver.missingPackage("model.c:9:1: error: expected ';' after expression") == nil)
    }

    /// The same through `nncc compile`, with a stand-in for clang (NNCC_CC) that fails as clang does on a
    /// machine without libopenblas-dev: in the model's compile, and (compiling with the real clang) in the link.
    @Test func compileWithoutOpenBLASSaysWhatToInstall() throws {
        let dir = Paths.tempDir()
        let model = Paths.examples.appendingPathComponent("sine_regression.swiftnn").path
        let real = Toolchain.which("clang") ?? "/opt/swift/usr/bin/clang"
        let scripts = [
            ("no-header", "for a; do [ \"$a\" = -c ] && { echo \"$PWD/model.c:5:10: fatal error: 'cblas.h' file not found\" >&2; exit 1; }; done\nexit 1\n",
             "fatal error: 'cblas.h' file not found"),
            ("no-library", "for a; do [ \"$a\" = -c ] && exec \(real) \"$@\"; done\necho '/usr/bin/ld: cannot find -lopenblas: No such file or directory' >&2\nexit 1\n",
             "cannot find -lopenblas"),
        ]
        for (name, body, said) in scripts {
            let fake = dir.appendingPathComponent(name)
            try ("#!/bin/sh\n" + body).write(to: fake, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake.path)
            let out = dir.appendingPathComponent("trainer-\(name)")
            let r = try Run.run(Paths.nncc, ["compile", model, "-o", out.path],
                                env: ["NNCC_CC": fake.path, "NNCC_CACHE_DIR": dir.appendingPathComponent("cache-\(name)").path])
            #expect(r.status == 1, "\(name): exit \(r.status): \(r.stderr)")
            #expect(r.stderr.contains("install libopenblas-dev") && r.stderr.contains(said), "\(name): \(r.stderr)")
            #expect(!r.stderr.contains("internal error"), "\(name): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out.path), "\(name): no trainer is written")
        }
    }

    /// `nncc compile` builds the runtime in the background while it evaluates the model file. When the model
    /// file has an error, nncc still waits for that build before it exits: the cache then holds every runtime
    /// object and no temporary file (a clang left running would write into the cache after nncc has gone), and
    /// the next compile in that cache reuses the runtime.
    @Test func modelErrorOnAColdCacheLeavesTheRuntimeBuilt() throws {
        let dir = Paths.tempDir()
        let cache = dir.appendingPathComponent("cache")
        let bad = try writeModel("bad", "import NNDSL\nlet x =\n", in: dir)
        let r = try Run.run(Paths.nncc, ["compile", bad.path, "-o", dir.appendingPathComponent("t").path],
                            env: ["NNCC_CACHE_DIR": cache.path])
        #expect(r.status == 1 && r.stderr.contains("bad.swiftnn:2:"), "\(r.stderr)")
        let runtimeDirs = try FileManager.default.contentsOfDirectory(atPath: cache.appendingPathComponent("runtime").path)
        #expect(runtimeDirs.count == 1)
        let built = try FileManager.default.contentsOfDirectory(
            atPath: cache.appendingPathComponent("runtime/\(runtimeDirs[0])").path)
        let sources = try FileManager.default.contentsOfDirectory(atPath: Paths.repo.appendingPathComponent("runtime").path)
            .filter { $0.hasSuffix(".c") }
        #expect(sources.count > 5)
        for c in sources { #expect(built.contains(String(c.dropLast(2)) + ".o"), "\(c): no object in \(built)") }
        #expect(!built.contains { $0.hasSuffix(".tmp") }, "temporary files left: \(built)")
        let good = try writeModel("good", """
            import NNDSL
            train(Sequential { Linear(3, 2) }, input: 3, loss: .mse, optimizer: SGD(learningRate: 0.1))
            """, in: dir)
        let second = try Run.run(Paths.nncc, ["compile", good.path, "-o", dir.appendingPathComponent("t").path, "--verbose"],
                                 env: ["NNCC_CACHE_DIR": cache.path])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(!second.stderr.contains("compiled the runtime"), "the runtime was compiled again: \(second.stderr)")
    }

    /// A second compile of an unchanged file comes from the cache, and the trainer still works.
    @Test func unchangedFileIsServedFromTheCache() throws {
        let dir = Paths.tempDir()
        let model = try writeModel("cached", """
            import NNDSL
            train(Sequential { Linear(3, 2) }, input: 3, loss: .mse, optimizer: SGD(learningRate: 0.1))
            """, in: dir)
        let out = dir.appendingPathComponent("t").path
        let first = try Run.run(Paths.nncc, ["compile", model.path, "-o", out, "--verbose"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(!first.stderr.contains("evaluate: cached"))
        let second = try Run.run(Paths.nncc, ["compile", model.path, "-o", out, "--verbose"])
        #expect(second.status == 0)
        #expect(second.stderr.contains("evaluate: cached") && second.stderr.contains("build: cached"), "\(second.stderr)")
        #expect(try Run.run(out, ["--help"]).status == 0)
    }

    /// Trainers and runtime objects are built with -march=native, so the cache key holds the CPU: a cache
    /// carried to another machine rebuilds instead of handing out code for instructions that CPU may lack.
    @Test func cacheKeyHoldsTheCPU() throws {
        let cpu = Driver.hostCPU.split(separator: "\n").map { $0.prefix { $0 != ":" }.trimmingCharacters(in: .whitespaces) }
        #expect(cpu == ["vendor_id", "cpu family", "model", "flags"], "\(Driver.hostCPU)")
        let driver = Driver(tools: try Paths.toolchain())
        let here = try driver.snapshotRuntime().hash
        #expect(try driver.snapshotRuntime(cpu: Driver.hostCPU).hash == here)
        #expect(try driver.snapshotRuntime(cpu: Driver.hostCPU.replacingOccurrences(of: " avx2", with: "")).hash != here)
    }
}
