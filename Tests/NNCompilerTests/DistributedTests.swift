import Foundation
import Testing

/// Data-parallel training over MPI (`nncc compile --mpi`, runtime/dist.c, docs/distributed.md), under
/// `mpirun -np 2 --oversubscribe`: two ranks at global batch B train what one process trains at B, every rank ends
/// with the same weights bit for bit, resuming works with the same and with another number of ranks, and a killed
/// rank ends the job with a message instead of a hang. Skipped, with the reason, when mpirun is not installed
/// (scripts/install-deps.sh installs Open MPI, so CI runs them).
@Suite(.serialized) struct DistributedTests {
    static let work = Paths.tempDir("distributed")
    static let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let data: URL = {
        let d = work.appendingPathComponent("data")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        try? DataFiles.mnistFolder(d, train: 300, test: 60)
        return d
    }()
    /// The Fashion-MNIST MLP (Adam), built plain and with --mpi; the residual MLP (Dropout, BatchNorm, AdamW) with --mpi.
    static let mlp = trainer("fashion_mnist_mlp", mpi: false)
    static let mlpMPI = trainer("fashion_mnist_mlp", mpi: true)
    static let resMPI = trainer("fashion_mnist_resmlp", mpi: true)

    static func trainer(_ example: String, mpi: Bool) -> String {
        let dir = work.appendingPathComponent(mpi ? "mpi" : "plain")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return (try? compileTrainer(Paths.examples.appendingPathComponent(example + ".swiftnn"), into: dir,
                                    flags: mpi ? ["--mpi"] : [])) ?? "missing"
    }

    func file(_ name: String) -> URL { Self.work.appendingPathComponent(name) }

    /// `mpirun -np P --oversubscribe [--allow-run-as-root] TRAINER ARGS…`.
    func mpi(_ ranks: Int, _ exe: String, _ args: [String], env: [String: String] = [:]) throws -> Run {
        try Run.run(Self.mpirun!, mpirunFlags(ranks) + [exe] + args, env: env)
    }

    func mpirunFlags(_ ranks: Int) -> [String] {
        ["-np", "\(ranks)", "--oversubscribe"] + (getuid() == 0 ? ["--allow-run-as-root"] : [])
    }

    func skipWithoutMPI() -> Bool {
        if Self.mpirun == nil { print("DistributedTests skipped: mpirun is not installed (scripts/install-deps.sh installs openmpi-bin)") }
        return Self.mpirun == nil
    }

    func stepLosses(_ url: URL) throws -> [Double] {
        try readJSONL(url).compactMap { $0["step"] != nil ? $0["loss"] as? Double : nil }
    }

    /// (a) Two ranks at global batch 32 (16 samples each) log the losses one process logs at batch 32. They are the
    /// same sums in another order: each rank's gradient is a mean over its 16 samples, scaled by 1/2 and summed by
    /// the allreduce, where one process sums 32 samples in one GEMM. The first step's loss differs by float32
    /// rounding only (one ulp, ~1e-7 relative); later steps start from weights that differ by such rounding,
    /// which Adam's normalized update carries on. Measured over these 40 steps (4 epochs): at most 1.1e-7 relative,
    /// one float32 ulp (the `worst` printed). The bound, 1e-5, leaves two orders of magnitude for other kernel sets
    /// (AVX2, OpenBLAS) and stays far below a real error: a shard trained twice, or gradients summed without the
    /// 1/2, moves the loss by percents from the second step on.
    @Test func twoRanksTrainWhatOneProcessTrains() throws {
        guard !skipWithoutMPI() else { return }
        let common = ["train", "--data", Self.data.path, "--val-split", "0", "--batch", "32", "--epochs", "4", "--log-every", "1", "--quiet", "--threads", "1"]
        let one = try Run.run(Self.mlp, common + ["--log", file("one.jsonl").path, "--save", file("one.st").path])
        try #require(one.status == 0, "\(one.stderr)")
        let two = try mpi(2, Self.mlpMPI, common + ["--log", file("two.jsonl").path, "--save", file("two.st").path])
        try #require(two.status == 0, "\(two.stdout)\n\(two.stderr)")
        let a = try stepLosses(file("one.jsonl")), b = try stepLosses(file("two.jsonl"))
        try #require(a.count == 40 && b.count == 40, "10 steps per epoch (300 = 9·32 + 12), 4 epochs; one logged \(a.count), two \(b.count)")
        let worst = zip(a, b).map { abs($0 - $1) / abs($0) }.max()!
        print("DistributedTests: largest relative difference of the 40 step losses, 2 ranks against 1 process: \(worst)")
        #expect(close(b[0], a[0], rtol: 1e-6), "the first step: the same weights, the loss summed in another order")
        for (s, (x, y)) in zip(a, b).enumerated() { #expect(close(y, x, rtol: 1e-5), "step \(s + 1): 2 ranks \(y), 1 process \(x)") }
        // rank 0 alone wrote: one JSONL (no line twice), the epoch lines on stdout once
        #expect(try readJSONL(file("two.jsonl")).filter { $0["train_loss"] != nil }.count == 4)
        #expect(two.stdout.components(separatedBy: "epoch 4/4").count == 2, "once: \(two.stdout)")
    }

    /// (b) After an epoch every rank holds the same weights, bit for bit: the residual MLP, whose Dropout draws from
    /// each rank's own stream and whose BatchNorm statistics are each rank's (rank 0's running statistics go to all
    /// at the epoch's end). NNRT_DIST_SAVE_EVERY_RANK=1 makes rank 1 save its own copy as W.rank1.
    @Test func ranksEndWithTheSameWeights() throws {
        guard !skipWithoutMPI() else { return }
        let r = try mpi(2, Self.resMPI, ["train", "--data", Self.data.path, "--batch", "32", "--epochs", "1", "--quiet",
                                         "--save", file("res.st").path], env: ["NNRT_DIST_SAVE_EVERY_RANK": "1"])
        try #require(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let w0 = try Data(contentsOf: file("res.st")), w1 = try Data(contentsOf: file("res.st.rank1"))
        #expect(w0 == w1, "rank 0's and rank 1's weights differ")
        // and the ranks did not train the same samples with the same dropout masks: a one-process run differs
        let one = try mpi(1, Self.resMPI, ["train", "--data", Self.data.path, "--batch", "32", "--epochs", "1", "--quiet",
                                           "--save", file("res1.st").path])
        try #require(one.status == 0, "\(one.stderr)")
        #expect(try Data(contentsOf: file("res1.st")) != w0)
    }

    /// Resuming: the residual MLP (Dropout, BatchNorm) checkpointed by 2 ranks after epoch 1 and resumed by 2 ranks to
    /// epoch 3 equals an unbroken 2-rank run bit for bit (rank 0's dropout generator is in the checkpoint, and each
    /// rank derives its stream from it at every epoch's start). At the same global batch the number of ranks may
    /// change: the MLP checkpointed by 2 ranks and resumed by 1, or by the plain trainer and resumed by 2 ranks, logs
    /// the step losses of an unbroken one-process run within the noise of (a).
    @Test func resumesWithTheSameOrAnotherNumberOfRanks() throws {
        guard !skipWithoutMPI() else { return }
        let common = ["--data", Self.data.path, "--val-split", "0", "--batch", "32", "--quiet", "--log-every", "1"]
        let straight = try mpi(2, Self.resMPI, ["train"] + common + ["--epochs", "3", "--save", file("s.st").path])
        try #require(straight.status == 0, "\(straight.stderr)")
        let first = try mpi(2, Self.resMPI, ["train"] + common + ["--epochs", "1", "--checkpoint", file("c.st").path])
        try #require(first.status == 0, "\(first.stderr)")
        let rest = try mpi(2, Self.resMPI, ["train", "--data", Self.data.path, "--resume", file("c.st").path, "--epochs", "3",
                                            "--save", file("r.st").path])
        try #require(rest.status == 0, "\(rest.stderr)")
        #expect(try Data(contentsOf: file("s.st")) == Data(contentsOf: file("r.st")), "resumed on 2 ranks: bit-identical")

        let one = try Run.run(Self.mlp, ["train"] + common + ["--epochs", "3", "--threads", "1", "--log", file("m.jsonl").path])
        try #require(one.status == 0, "\(one.stderr)")
        let reference = try stepLosses(file("m.jsonl")).suffix(20)
        for (writer, reader) in [(2, 1), (1, 2)] {
            let ck = file("m\(writer).st"), log = file("m\(writer)-\(reader).jsonl")
            let a = writer == 1 ? try Run.run(Self.mlp, ["train"] + common + ["--epochs", "1", "--threads", "1", "--checkpoint", ck.path])
                                : try mpi(writer, Self.mlpMPI, ["train"] + common + ["--epochs", "1", "--checkpoint", ck.path])
            try #require(a.status == 0, "\(a.stderr)")
            let b = try mpi(reader, Self.mlpMPI, ["train", "--data", Self.data.path, "--resume", ck.path, "--epochs", "3",
                                                  "--log-every", "1", "--log", log.path])
            try #require(b.status == 0, "\(b.stderr)")
            let resumed = try stepLosses(log)
            try #require(resumed.count == 20, "epochs 2 and 3: 20 steps, logged \(resumed.count)")
            for (x, y) in zip(reference, resumed) {
                #expect(close(y, x, rtol: 1e-5), "written by \(writer), resumed by \(reader) ranks: \(y) against \(x)")
            }
        }
    }

    /// (c) Killing one rank ends the job within seconds, with mpirun's message and the other rank's own line.
    @Test func aKilledRankEndsTheJob() throws {
        guard !skipWithoutMPI() else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.mpirun!)
        p.arguments = mpirunFlags(2) + [Self.mlpMPI, "train", "--data", Self.data.path, "--batch", "8", "--epochs", "1000",
                                        "--quiet", "--log-every", "1", "--log", file("k.jsonl").path]
        p.environment = ProcessInfo.processInfo.environment
        let err = file("k.err")
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        // wait for training (a logged step), then kill rank 1: the child of mpirun started second
        var ranks: [Int32] = [], waited = 0
        while waited < 600 && (ranks.count < 2 || ((try? stepLosses(file("k.jsonl")).count) ?? 0) < 5) {
            usleep(100_000)
            waited += 1
            ranks = children(of: p.processIdentifier)
        }
        try #require(ranks.count == 2, "mpirun's two ranks, found \(ranks)")
        kill(ranks.max()!, SIGKILL)
        let t0 = Date()
        while p.isRunning && Date().timeIntervalSince(t0) < 20 { usleep(50_000) }
        let seconds = Date().timeIntervalSince(t0)
        #expect(!p.isRunning, "mpirun still runs 20 s after a rank was killed")
        #expect(seconds < 10, "the job took \(seconds) s to end")
        if !p.isRunning { #expect(p.terminationStatus != 0) }
        let text = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        #expect(text.contains("exited on signal 9"), "mpirun names the killed rank: \(text)")
    }

    /// The processes whose parent is pid (from /proc).
    func children(of pid: Int32) -> [Int32] {
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return procs.compactMap(Int32.init).filter { c in
            guard let stat = try? String(contentsOfFile: "/proc/\(c)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }
    }

    /// The --mpi trainer's train_step reports each gradient after the last kernel that writes it and waits before
    /// the update; the plain C has neither (so the goldens, without --mpi, are unchanged).
    @Test func hooksSitBetweenBackwardAndUpdate() throws {
        let model = Paths.examples.appendingPathComponent("fashion_mnist_mlp.swiftnn").path
        let plain = try Run.run(Paths.nncc, ["compile", model, "--emit", "c"]), hooked = try Run.run(Paths.nncc, ["compile", model, "--emit", "c", "--mpi"])
        try #require(plain.status == 0 && hooked.status == 0, "\(plain.stderr)\(hooked.stderr)")
        #expect(!plain.stdout.contains("nnrt_dist_"))
        let step = String(hooked.stdout.split(separator: "static float train_step(")[1].split(separator: "\n}\n")[0])
        let lines = step.split(separator: "\n").map(String.init)
        func at(_ s: String) -> Int { lines.firstIndex { $0.contains(s) } ?? -1 }
        let wait = at("nnrt_dist_grads_wait(ctx);")
        #expect(wait > 0 && wait < at("k_adam_update_chunk") && wait > at("k_dW0_matmul_chunk"), "waits after backward, before the update")
        for (param, numel, kernel) in [("OFF_4_BIAS", 10, "k_db4_sum_batch"), ("OFF_2_BIAS", 128, "k_dh2_matmul_step_mul_sum_batch"),
                                       ("OFF_4_WEIGHT", 1280, "k_dW4_matmul"), ("OFF_2_WEIGHT", 32768, "pair_dh0_dW2"),
                                       ("OFF_0_BIAS", 256, "pair_dh0_dW2"), ("OFF_0_WEIGHT", 200704, "k_dW0_matmul_chunk")] {
            let ready = at("nnrt_dist_grad_ready(ctx, \(param), \(numel));")
            #expect(ready > at(kernel) && ready < wait, "\(param) is reported after \(kernel) and before the wait")
        }
        #expect(lines.filter { $0.contains("nnrt_dist_grad_ready") }.count == 6, "one report per trainable parameter")
    }

    /// `nncc compile --mpi` on a machine without Open MPI: one error line naming the packages, exit 1, no trainer.
    @Test func mpiWithoutMpiccIsOneLine() throws {
        let out = Self.work.appendingPathComponent("no-mpicc")
        let clang = ["/usr/bin/clang", "/opt/swift/usr/bin/clang"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "clang"
        let r = try Run.run(Paths.nncc, ["compile", Paths.examples.appendingPathComponent("fashion_mnist_mlp.swiftnn").path, "--mpi",
                                         "-o", out.path],
                            env: ["PATH": "/nonexistent", "NNCC_CC": clang, "NNCC_SWIFTC": "/opt/swift/usr/bin/swiftc"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("nncc: error: --mpi: mpicc is not on the PATH: install Open MPI (apt-get install openmpi-bin "
                                  + "libopenmpi-dev, or scripts/install-deps.sh in nncc's repository)"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    /// Under mpirun only train runs.
    @Test func onlyTrainRunsUnderMPI() throws {
        guard !skipWithoutMPI() else { return }
        let r = try mpi(2, Self.mlpMPI, ["eval", "--weights", file("one.st").path, "--data", Self.data.path])
        #expect(r.status != 0)
        #expect(r.stderr.contains("under mpirun (2 ranks) only train runs; run this command as one process"), "\(r.stderr)")
    }
}
