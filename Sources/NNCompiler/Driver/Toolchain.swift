import Foundation
import NNIR

/// Where nncc finds what it needs at run time: the DSL library it was built with, the C runtime sources,
/// the compilers and its cache.
public struct Toolchain: Sendable {
    /// The folder holding `libNNDSL.so` and `Modules/NNDSL.swiftmodule` (next to the nncc executable).
    public var dslDir: URL
    public var runtimeDir: URL
    public var cacheDir: URL
    public var swiftc: String
    public var clang: String
    /// Changes whenever nncc or the DSL library is rebuilt, so cached results of another build are not reused.
    public var buildID: String

    /// Finds everything from the environment (`NNCC_*`, documented in docs/nncc.md) or else from where the
    /// nncc executable really is (symlinks resolved): an install prefix (`<prefix>/bin/nncc` beside
    /// `<prefix>/lib/nncc` and `<prefix>/share/nncc/runtime`, as scripts/install.sh --prefix lays it out) or a
    /// build folder inside the repository (`.build/release/nncc`, with `runtime/` above it).
    public static func locate() throws -> Toolchain {
        let env = ProcessInfo.processInfo.environment
        let exe = executable
        let binDir = exe.deletingLastPathComponent()
        let layout = InstallLayout(binDir: binDir)
        let dslDir = env["NNCC_DSL_DIR"].map { URL(fileURLWithPath: $0) } ?? layout.dslDir
        let runtime: URL
        if let r = env["NNCC_RUNTIME"] {
            runtime = URL(fileURLWithPath: r)
            guard isRuntime(runtime) else {
                throw Diagnostic.error("NNCC_RUNTIME=\(r) is not nncc's C runtime (it has no nnrt_model.h)")
            }
        } else if let r = layout.runtimeDir {
            runtime = r
        } else {
            throw Diagnostic.error("cannot find the C runtime: no \(layout.installedRuntime.path) and no runtime/ above "
                              + "\(binDir.path); install with scripts/install.sh --prefix, or set NNCC_RUNTIME to nncc's runtime/ folder")
        }
        let home = env["HOME"] ?? "/tmp"
        let cache = env["NNCC_CACHE_DIR"] ?? env["XDG_CACHE_HOME"].map { $0 + "/nncc" } ?? home + "/.cache/nncc"
        var id = ContentHash()
        for f in [exe, dslDir.appendingPathComponent("libNNDSL.so")] {
            let a = try? FileManager.default.attributesOfItem(atPath: f.path)
            id.update("\(f.path) \(a?[.size] ?? 0) \((a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)")
        }
        return Toolchain(dslDir: dslDir, runtimeDir: runtime, cacheDir: URL(fileURLWithPath: cache),
                         swiftc: env["NNCC_SWIFTC"] ?? which("swiftc") ?? "/opt/swift/usr/bin/swiftc",
                         clang: env["NNCC_CC"] ?? which("clang") ?? "cc", buildID: id.hex)
    }

    /// The running executable, symlinks resolved: a link to nncc on the PATH finds what the real nncc finds.
    public static var executable: URL {
        URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]).standardizedFileURL
    }

    static func isRuntime(_ dir: URL) -> Bool {
        FileManager.default.fileExists(atPath: dir.appendingPathComponent("nnrt_model.h").path)
    }

    static func findRuntime(from dir: URL) -> URL? {
        var d = dir
        for _ in 0..<6 {
            let r = d.appendingPathComponent("runtime")
            if isRuntime(r) { return r }
            d = d.deletingLastPathComponent()
        }
        return nil
    }

    static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}

/// Where an installed or built nncc keeps its parts, relative to the folder of the real executable.
struct InstallLayout {
    var binDir: URL
    var prefix: URL { binDir.deletingLastPathComponent() }
    /// `<prefix>/share/nncc/runtime`: the runtime's sources, copied by scripts/install.sh --prefix.
    var installedRuntime: URL { prefix.appendingPathComponent("share/nncc/runtime") }
    /// The DSL library: beside the executable in a build folder, else `<prefix>/lib/nncc`.
    var dslDir: URL {
        let lib = prefix.appendingPathComponent("lib/nncc")
        let here = FileManager.default.fileExists(atPath: binDir.appendingPathComponent("libNNDSL.so").path)
        return !here && FileManager.default.fileExists(atPath: lib.appendingPathComponent("libNNDSL.so").path) ? lib : binDir
    }
    var runtimeDir: URL? {
        Toolchain.isRuntime(installedRuntime) ? installedRuntime : Toolchain.findRuntime(from: binDir)
    }
    /// `<prefix>/share/nncc/commit`: the git commit an installed copy was built from.
    var commitFile: URL { prefix.appendingPathComponent("share/nncc/commit") }
}

/// Runs a program and collects its output; never throws for a non-zero exit, only for a failure to start.
struct Subprocess {
    /// The exit status, or the signal's number when `signal` is set.
    var status: Int32
    var stdout: String
    var stderr: String
    /// The signal that killed it, if one did.
    var signal: Int32? = nil

    static func run(_ path: String, _ args: [String], env: [String: String] = [:]) throws -> Subprocess {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { throw Diagnostic.error("cannot run \(path): \(error.localizedDescription)") }
        // Read both pipes before waiting, so a chatty child cannot block on a full pipe.
        let o = LockedData()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { o.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let e = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Subprocess(status: p.terminationStatus, stdout: String(decoding: o.data, as: UTF8.self),
                          stderr: String(decoding: e, as: UTF8.self),
                          signal: p.terminationReason == .uncaughtSignal ? p.terminationStatus : nil)
    }
}

/// Bytes handed from the thread that drains a pipe to the one that waits for it.
final class LockedData: @unchecked Sendable {
    var data = Data()
}
