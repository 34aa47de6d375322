import Foundation
import NNIR

/// `nncc compile`: evaluates a model file, runs the pipeline and builds the trainer, caching by content.
public struct Driver {
    public var tools: Toolchain
    public var useCache = true
    /// Receives progress lines when the user asked for them (`--verbose`); called from any thread (the runtime
    /// build runs in the background).
    public var note: (String) -> Void = { _ in }
    /// Receives what the user should always see (a sandbox that is missing); stderr by default.
    public var notice: (String) -> Void = { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
    /// The wall-clock limit for running a model file (`--eval-timeout`), in seconds.
    public var evalTimeout = ModelSandbox.defaultTimeout

    public init(tools: Toolchain) { self.tools = tools }

    /// -march=native: the trainer runs on the machine that built it (AVX-512 here). -fno-math-errno lets clang
    /// vectorize sqrtf and friends: the Adam update went from 1.73 to 0.30 ms per step with it.
    static let cFlags = ["-O3", "-march=native", "-fno-math-errno", "-std=c11", "-w"]

    /// What -march=native depends on: the first CPU's vendor, family, model and feature flags from /proc/cpuinfo.
    /// It is part of every build's cache key, so a cache that moves to another machine (a shared home folder, a
    /// copied container) never hands out a trainer or runtime objects built for instructions this CPU lacks.
    static let hostCPU: String = {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "" }
        let keys = ["vendor_id", "cpu family", "model", "flags"]
        let first = info.components(separatedBy: "\n\n").first ?? ""
        return first.split(separator: "\n").filter { line in
            keys.contains(line.prefix { $0 != ":" }.trimmingCharacters(in: .whitespaces))
        }.joined(separator: "\n")
    }()

    // ---- build: C → trainer

    /// Builds the trainer from C source, reusing a cached binary for identical source and runtime. `runtime` is
    /// the runtime build started by `startRuntimeBuild()`; without it, the runtime is snapshotted (and compiled,
    /// if its objects are not cached) here. The model's C compiles while the runtime's objects may still be
    /// compiling; only the link waits for them.
    /// With `mpi` (`nncc compile --mpi`), the runtime's dist.c is compiled again with mpicc's flags and
    /// -DNNRT_MPI, in place of its one-process object, and the trainer links libmpi (Driver+MPI).
    public func build(cSource: String, output: URL, runtime started: RuntimeBuild? = nil, mpi: Bool = false) throws {
        let runtime = try started ?? startRuntimeBuild(background: false)
        let mpiFlags = mpi ? try Driver.mpiFlags() : nil
        var h = ContentHash()
        h.update(cSource); h.update(runtime.hash); h.update(Driver.cFlags.joined(separator: " "))
        if let f = mpiFlags { h.update("mpi " + (f.compile + f.link).joined(separator: " ")) }
        let cached = tools.cacheDir.appendingPathComponent("bin/\(h.hex)")
        if !useCache || !FileManager.default.fileExists(atPath: cached.path) {
            let work = try scratch("build-\(h.hex)")
            defer { try? FileManager.default.removeItem(at: work) }
            let c = work.appendingPathComponent("model.c"), o = work.appendingPathComponent("model.o")
            try Data(cSource.utf8).write(to: c)
            let exe = work.appendingPathComponent("trainer")
            var r = try Subprocess.run(tools.clang, Driver.cFlags + ["-I", runtime.include.path, "-c", c.path, "-o", o.path])
            var objects = try runtime.objects(), libs: [String] = []
            if r.status == 0, let f = mpiFlags {
                let dist = work.appendingPathComponent("dist_mpi.o")
                r = try Subprocess.run(tools.clang, Driver.cFlags + f.compile + ["-DNNRT_MPI", "-I", runtime.include.path, "-c",
                                       runtime.include.appendingPathComponent("dist.c").path, "-o", dist.path])
                objects = objects.filter { !$0.hasSuffix("/dist.o") } + [dist.path]
                libs = f.link
            }
            if r.status == 0 {
                r = try Subprocess.run(tools.clang, [o.path] + objects
                                       + ["-lopenblas", "-lpng", "-lz", "-lm", "-lpthread"] + libs + ["-o", exe.path])
            }
            if r.status != 0 {
                if let missing = Driver.missingPackage(r.stderr) { throw Diagnostic.error(missing) }
                throw Diagnostic.error("internal error: clang could not build the trainer:\n\(r.stderr)")
            }
            try store(try Data(contentsOf: exe), at: cached, executable: true)
        } else {
            note("build: cached \(cached.path)")
        }
        try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        let tmp = output.deletingLastPathComponent().appendingPathComponent(".\(output.lastPathComponent).tmp")
        try? FileManager.default.removeItem(at: tmp)
        try FileManager.default.copyItem(at: cached, to: tmp)
        guard rename(tmp.path, output.path) == 0 else {
            throw Diagnostic.error("\(output.path): cannot write the trainer: \(String(cString: strerror(errno)))")
        }
    }

    /// Snapshots the runtime's sources (now) and compiles them into cached objects, unless they are cached
    /// already, on a background thread. `nncc compile` starts this before it evaluates the model file, so that
    /// clang builds the runtime while swiftc compiles the model file and the pipeline runs. A cold compile of
    /// the example (empty cache) went from 2.51–2.77 s to 1.87–2.22 s, four interleaved pairs, this and the
    /// model's own `clang -c` before the link.
    public func startRuntimeBuild(background: Bool = true) throws -> RuntimeBuild {
        let runtime = try snapshotRuntime()
        let (include, compile) = try runtimeObjects(runtime)
        let build = RuntimeBuild(hash: runtime.hash, include: include)
        // The closure holds only the snapshot's paths, clang's path and `note` (which the caller gives us to
        // use from any thread); RuntimeBuild synchronises the result.
        let job = UncheckedSendable(value: compile)
        let work: @Sendable () -> Void = { build.finish(Result { try job.value() }) }
        if background { Thread.detachNewThread(work) } else { work() }
        return build
    }

    func runtimeSources() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: tools.runtimeDir, includingPropertiesForKeys: nil)
            .filter { ["c", "h", "inc"].contains($0.pathExtension) }.sorted { $0.path < $1.path }
    }

    /// The runtime's sources as they are now, and their hash. The build uses exactly these bytes (headers and
    /// objects), so an edit made while nncc compiles cannot mix two versions under one cache key.
    func snapshotRuntime(cpu: String = Driver.hostCPU) throws -> (hash: String, files: [(name: String, data: Data)]) {
        var h = ContentHash()
        h.update(cpu)
        var files: [(name: String, data: Data)] = []
        for f in try runtimeSources() {
            let data = try Data(contentsOf: f)
            files.append((f.lastPathComponent, data))
            h.update(f.lastPathComponent); h.update(data)
        }
        return (h.hex, files)
    }

    /// The snapshot's header folder (written now) and a function that returns its object files, compiling them
    /// once per runtime version, two at a time (the machine has two cores), into cache/runtime/<hash>/ (sources
    /// in src/).
    func runtimeObjects(_ runtime: (hash: String, files: [(name: String, data: Data)])) throws -> (URL, () throws -> [String]) {
        let dir = tools.cacheDir.appendingPathComponent("runtime/\(runtime.hash)")
        let src = dir.appendingPathComponent("src")
        let sources = runtime.files.map(\.name).filter { $0.hasSuffix(".c") }
        let objects = sources.map { dir.appendingPathComponent(($0 as NSString).deletingPathExtension + ".o").path }
        if FileManager.default.fileExists(atPath: src.path), objects.allSatisfy(FileManager.default.fileExists) {
            return (src, { objects })
        }
        let staging = try scratch("runtime-\(runtime.hash)")
        for f in runtime.files { try f.data.write(to: staging.appendingPathComponent(f.name)) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        if rename(staging.path, src.path) != 0 { try? FileManager.default.removeItem(at: staging) }  // another nncc won
        let (clang, note) = (tools.clang, note)
        return (src, {
            let failures = LockedList()
            DispatchQueue.concurrentPerform(iterations: sources.count) { i in
                let tmp = objects[i] + ".\(getpid())-\(i).tmp"
                let r = try? Subprocess.run(clang, Driver.cFlags + ["-c", src.appendingPathComponent(sources[i]).path, "-o", tmp])
                if r?.status == 0 { rename(tmp, objects[i]) } else { failures.append("\(sources[i]): \(r?.stderr ?? "")") }
            }
            if let f = failures.items.first {
                if let missing = Driver.missingPackage(f) { throw Diagnostic.error(missing) }
                throw Diagnostic.error("internal error: the runtime does not compile: \(f)")
            }
            note("build: compiled the runtime into \(dir.path)")
            return objects
        })
    }

    /// The system libraries the trainer is built with, by what clang or the linker says when their development
    /// files are missing (clang: "fatal error: 'cblas.h' file not found"; GNU ld: "cannot find -lopenblas"; lld:
    /// "unable to find library -lopenblas"), and the Debian package that provides them.
    static let systemLibraries: [(clues: [String], what: String, package: String)] = [
        (["'cblas.h' file not found", "cannot find -lopenblas", "unable to find library -lopenblas"],
         "OpenBLAS (its header cblas.h and libopenblas.so)", "libopenblas-dev"),
        (["'zlib.h' file not found", "cannot find -lz:", "cannot find -lz\n", "unable to find library -lz\n"],
         "zlib (its header zlib.h and libz.so)", "zlib1g-dev"),
        (["'png.h' file not found", "cannot find -lpng", "unable to find library -lpng"],
         "libpng (its header png.h and libpng.so)", "libpng-dev"),
    ]

    /// A message naming the package to install when clang's output says a system library is missing, else nil.
    static func missingPackage(_ clangOutput: String) -> String? {
        let text = clangOutput + "\n"
        guard let lib = systemLibraries.first(where: { $0.clues.contains { text.contains($0) } }) else { return nil }
        let line = text.split(separator: "\n").first { l in lib.clues.contains { (l + "\n").contains($0) } } ?? ""
        return "the trainer is built against \(lib.what), which this machine lacks: install \(lib.package) "
            + "(apt-get install \(lib.package), or scripts/install-deps.sh in nncc's repository)\n"
            + "clang said: \(line.trimmingCharacters(in: .whitespaces))"
    }

    // ---- files

    func scratch(_ name: String) throws -> URL {
        // Unique per call: two compilations of the same file may run at once, even in one process.
        let d = tools.cacheDir.appendingPathComponent("work/\(name)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    /// Writes a cache entry atomically: a temporary file renamed into place.
    func store(_ data: Data, at url: URL, executable: Bool = false) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let tmp = url.path + ".\(getpid())-\(UUID().uuidString.prefix(8)).tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: data,
                                             attributes: executable ? [.posixPermissions: 0o755] : nil) else {
            throw Diagnostic.error("cannot write the cache entry \(tmp)")
        }
        rename(tmp, url.path)
    }
}

/// A runtime build in progress (see `Driver.startRuntimeBuild`): the snapshot's hash and header folder are
/// known at once; `objects()` waits for the object files.
public final class RuntimeBuild: @unchecked Sendable {
    let hash: String
    let include: URL
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var result: Result<[String], Error>?

    init(hash: String, include: URL) { self.hash = hash; self.include = include }

    fileprivate func finish(_ r: Result<[String], Error>) {
        lock.lock(); result = r; lock.unlock()
        done.signal()
    }

    /// Waits for the object files; rethrows the build's error.
    @discardableResult public func objects() throws -> [String] {
        lock.lock()
        if result == nil { lock.unlock(); done.wait(); done.signal(); lock.lock() }
        defer { lock.unlock() }
        return try result!.get()
    }
}

struct UncheckedSendable<T>: @unchecked Sendable { let value: T }

final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var items: [String] = []
    func append(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
}
