import Foundation
import Testing
@testable import NNCompiler

/// Locations the end-to-end tests need: the repository, its fixtures, the built nncc and a private cache.
enum Paths {
    static let repo = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = repo.appendingPathComponent("Tests/Fixtures")
    static let examples = repo.appendingPathComponent("examples")
    /// The folder of the test binary, which SwiftPM shares with nncc and libNNDSL.so.
    static let products = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                              ?? CommandLine.arguments[0]).deletingLastPathComponent()
    static let nncc = products.appendingPathComponent("nncc").path
    /// One cache for the whole test run, so compiles shared between tests are done once.
    static let cache: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("nncc-test-cache-\(getpid())")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }()

    static func tempDir(_ name: String = #function) -> URL {
        let clean = name.filter { $0.isLetter || $0.isNumber }
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("nncc-test-\(getpid())-\(clean)-\(UUID().uuidString.prefix(6))")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    static func toolchain() throws -> Toolchain {
        var t = try Toolchain.locate()
        t.dslDir = products
        t.runtimeDir = repo.appendingPathComponent("runtime")
        t.cacheDir = cache
        return t
    }
}

/// A finished process: its exit status and what it printed.
struct Run {
    var status: Int32
    var stdout: String
    var stderr: String

    /// Runs a program with extra environment variables, waiting for it.
    static func run(_ exe: String, _ args: [String], env: [String: String] = [:], cwd: URL? = nil) throws -> Run {
        var environment = ["NNCC_CACHE_DIR": Paths.cache.path]
        environment.merge(env) { $1 }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let cwd { p.currentDirectoryURL = cwd }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString).out")
        let err = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        try p.run()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                   stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }
}

/// Compiles a model file with the nncc executable into `dir`, failing the test with nncc's message if it fails.
func compileTrainer(_ model: URL, into dir: URL, flags: [String] = [],
                    sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let exe = dir.appendingPathComponent(model.deletingPathExtension().lastPathComponent + (flags.isEmpty ? "" : "-alt")).path
    let r = try Run.run(Paths.nncc, ["compile", model.path, "-o", exe] + flags)
    #expect(r.status == 0, "nncc compile \(model.lastPathComponent) failed: \(r.stderr)", sourceLocation: sourceLocation)
    return exe
}

/// Writes a model file into `dir` and returns its URL.
func writeModel(_ name: String, _ source: String, in dir: URL) throws -> URL {
    let u = dir.appendingPathComponent(name + ".swiftnn")
    try source.write(to: u, atomically: true, encoding: .utf8)
    return u
}
