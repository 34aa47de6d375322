import Foundation
import Testing
@testable import NNCompiler

/// A model file is code, so `nncc compile` runs it in a process group with a timeout and rlimits, under bwrap
/// when it can: a model that loops is stopped at --eval-timeout, nothing of it survives (no process, no scratch
/// folder), also when nncc is interrupted, and with bwrap it cannot write outside its scratch folder.
@Suite struct SandboxTests {
    static let loop = "import NNDSL\nwhile true {}\n"
    static var hasBwrap: Bool { ModelSandbox.workingBwrap != nil }

    /// With bwrap (`NNCC_BWRAP` unset) and without (`NNCC_BWRAP=`, which must say so in one line).
    @Test(arguments: [true, false])
    func infiniteLoopStopsAtTheTimeoutAndLeavesNothing(bwrap: Bool) throws {
        if bwrap && !Self.hasBwrap { return }
        let dir = Paths.tempDir()
        let cache = dir.appendingPathComponent("cache")
        let model = try writeModel("loop", Self.loop, in: dir)
        var env = ["NNCC_CACHE_DIR": cache.path]
        if !bwrap { env["NNCC_BWRAP"] = "" }
        let start = Date()
        let r = try Run.run(Paths.nncc, ["compile", model.path, "--emit", "graph", "--eval-timeout", "2"], env: env)
        let seconds = Date().timeIntervalSince(start)
        #expect(r.status == 1, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.hasSuffix("nncc: error: \(model.path): the model file did not finish within 2 s (--eval-timeout); does it loop forever?\n"),
                "\(r.stderr)")
        #expect(r.stderr.contains(ModelSandbox.notice) == !bwrap, "\(r.stderr)")
        #expect(seconds < 2 + 20, "took \(seconds) s: swiftc's compile and a 2 s timeout")
        #expect(Self.processes(mentioning: cache.path).isEmpty)
        #expect(try Self.scratchFolders(cache).isEmpty)
    }

    /// SIGTERM (or SIGINT) to nncc while the model runs: nncc kills the model's process group, removes its
    /// scratch folder and exits 128 + the signal.
    @Test(arguments: [SIGTERM, SIGINT])
    func interruptedCompileKillsTheModelAndCleansUp(signal: Int32) throws {
        let dir = Paths.tempDir()
        let cache = dir.appendingPathComponent("cache")
        let model = try writeModel("loop", Self.loop, in: dir)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Paths.nncc)
        p.arguments = ["compile", model.path, "--emit", "graph", "--eval-timeout", "120"]
        p.environment = ProcessInfo.processInfo.environment.merging(["NNCC_CACHE_DIR": cache.path]) { $1 }
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while Self.processes(mentioning: cache.path + "/work/").filter({ $0.hasSuffix("/model") }).isEmpty && Date() < deadline {
            usleep(50_000)
        }
        #expect(!Self.processes(mentioning: cache.path + "/work/").isEmpty, "the model never started")
        kill(p.processIdentifier, signal)
        p.waitUntilExit()
        #expect(p.terminationStatus == 128 + signal, "exit \(p.terminationStatus)")
        // A killed process is gone only once the kernel has torn it down and its parent has reaped it, which
        // takes longer than any fixed pause on a loaded machine: wait for it, up to a deadline.
        let gone = Date().addingTimeInterval(10)
        while !Self.processes(mentioning: cache.path).isEmpty && Date() < gone { usleep(50_000) }
        #expect(Self.processes(mentioning: cache.path).isEmpty)
        #expect(try Self.scratchFolders(cache).isEmpty)
    }

    /// Under bwrap the root is read-only and /tmp private: a model that writes outside its scratch folder
    /// cannot leave the file behind.
    @Test(.enabled(if: SandboxTests.hasBwrap))
    func writesOutsideTheScratchFolderAreContained() throws {
        let dir = Paths.tempDir()
        let escaped = dir.appendingPathComponent("escaped")
        let home = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent("nncc-sandbox-escape-\(getpid())")
        let model = try writeModel("writer", """
            import NNDSL
            import Foundation
            for path in ["\(escaped.path)", "\(home.path)"] {
                FileManager.default.createFile(atPath: path, contents: Data("x".utf8))
            }
            train(Sequential { Linear(3, 2) }, input: 3, loss: .mse, optimizer: SGD(learningRate: 0.1))
            """, in: dir)
        let r = try Run.run(Paths.nncc, ["compile", model.path, "--emit", "graph", "--no-cache"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: escaped.path), "a write into /tmp escaped")
        #expect(!FileManager.default.fileExists(atPath: home.path), "a write into $HOME escaped")
        try? FileManager.default.removeItem(at: home)
    }

    /// The command lines of running processes that mention `text` (Linux /proc).
    static func processes(mentioning text: String) -> [String] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.filter { $0.allSatisfy(\.isNumber) }.compactMap { pid in
            guard let d = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let cmd = String(decoding: d, as: UTF8.self).replacingOccurrences(of: "\0", with: " ").trimmingCharacters(in: .whitespaces)
            return cmd.contains(text) ? cmd : nil
        }
    }

    static func scratchFolders(_ cache: URL) throws -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: cache.appendingPathComponent("work").path)) ?? [])
            .filter { $0.hasPrefix("eval-") }
    }
}
