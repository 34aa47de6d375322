import Foundation
import NNIR

/// Runs the program built from a model file. A model file is code (like a SwiftPM manifest), so it runs
///
/// - in a process group of its own, which is killed on every way out: its end, the timeout, and nncc's SIGINT,
///   SIGTERM or SIGHUP (with the scratch folder removed too); `setpriv --pdeathsig` or bwrap's
///   `--die-with-parent` kill it even when nncc itself is killed;
/// - with a wall-clock timeout (`--eval-timeout`, default 60 s), a CPU-time limit just above it, and a 4 GiB
///   address-space limit;
/// - under bubblewrap when `bwrap` is present and works: read-only root, no network, private /tmp, only the
///   scratch folder writable. Without it, a one-line notice says so.
struct ModelSandbox {
    var timeout: Double
    var memoryBytes: UInt64 = 4 << 30
    /// bwrap's path, when it runs here (it needs user namespaces); nil runs without it.
    var bwrap: String? = ModelSandbox.workingBwrap

    static let defaultTimeout = 60.0

    /// Runs `exe` with `env` added, `scratch` its only writable folder, `libraries` (the DSL library's folder)
    /// readable even under the private /tmp; never throws for a non-zero exit.
    func run(_ exe: String, env: [String: String], scratch: URL, libraries: [URL]) throws -> (result: Subprocess, timedOut: Bool) {
        var argv = ["/bin/sh", "-c", "ulimit -c 0; ulimit -t \(Int(timeout.rounded(.up)) + 1); "
                    + "ulimit -v \(memoryBytes / 1024); exec \"$0\" \"$@\"", exe]
        if let bwrap {
            argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                    "--bind", scratch.path, scratch.path] + libraries.flatMap { ["--ro-bind", $0.path, $0.path] } + ["--unshare-all", "--die-with-parent", "--new-session",
                    "--chdir", scratch.path, "--"] + argv
        } else if let setpriv = Toolchain.which("setpriv") {
            argv = [setpriv, "--pdeathsig", "KILL", "--"] + argv
        }
        return try ProcessGroup.run(argv, env: env, timeout: timeout)
    }

    /// bwrap (`NNCC_BWRAP`, else on the PATH; `NNCC_BWRAP=` with no value runs without it), if it can make its
    /// namespaces here (a container may forbid them).
    static let workingBwrap: String? = {
        let chosen = ProcessInfo.processInfo.environment["NNCC_BWRAP"]
        guard let b = chosen.map({ $0.isEmpty ? nil : $0 }) ?? Toolchain.which("bwrap"),
              let r = try? ProcessGroup.run([b, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                                            env: [:], timeout: 10).result, r.status == 0, r.signal == nil else { return nil }
        return b
    }()

    static let notice = "nncc: note: bwrap (Debian's bubblewrap) is not available: the model file runs with a time "
        + "limit and rlimits but no sandbox; install bubblewrap to sandbox it"
}

/// A child in its own process group, its output collected, killed with its whole group when it ends or times
/// out, and on nncc's SIGINT/SIGTERM/SIGHUP (see `Interrupts`).
enum ProcessGroup {
    static func run(_ argv: [String], env: [String: String], timeout: Double) throws -> (result: Subprocess, timedOut: Bool) {
        var out: [Int32] = [0, 0], err: [Int32] = [0, 0]
        guard pipe(&out) == 0, pipe(&err) == 0 else { throw Diagnostic.error("cannot create a pipe: \(String(cString: strerror(errno)))") }
        var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        for fd in out + err { posix_spawn_file_actions_addclose(&actions, fd) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attr, 0)
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none); sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        let environment = ProcessInfo.processInfo.environment.merging(env) { $1 }.map { "\($0)=\($1)" }
        var pid: pid_t = 0
        let spawned = withCStrings(argv) { a in withCStrings(environment) { e in posix_spawn(&pid, argv[0], &actions, &attr, a, e) } }
        close(out[1]); close(err[1])
        guard spawned == 0 else {
            close(out[0]); close(err[0])
            throw Diagnostic.error("cannot run \(argv[0]): \(String(cString: strerror(spawned)))")
        }
        Interrupts.shared.add(group: pid)
        defer { Interrupts.shared.remove(group: pid) }
        let o = LockedData(), e = LockedData()
        let readers = DispatchGroup()
        for (fd, sink) in [(out[0], o), (err[0], e)] {
            readers.enter()
            DispatchQueue.global().async {
                sink.data = FileHandle(fileDescriptor: fd, closeOnDealloc: true).readDataToEndOfFile()
                readers.leave()
            }
        }
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0, timedOut = false
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno != EINTR) { break }
            if Date() >= deadline, !timedOut {
                timedOut = true
                kill(-pid, SIGKILL)
            }
            usleep(5_000)
        }
        kill(-pid, SIGKILL)  // whatever the model started in its group goes with it
        readers.wait()
        let signaled = status & 0x7f != 0 && status & 0x7f != 0x7f
        return (Subprocess(status: signaled ? status & 0x7f : (status >> 8) & 0xff,
                           stdout: String(decoding: o.data, as: UTF8.self), stderr: String(decoding: e.data, as: UTF8.self),
                           signal: signaled ? status & 0x7f : nil), timedOut)
    }

    static func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return body(pointers)
    }
}

/// What nncc must undo if it is interrupted: the model's process groups to kill and the scratch folders to
/// remove. On SIGINT, SIGTERM or SIGHUP it does both and exits 128 + the signal, as a shell reports it.
final class Interrupts: @unchecked Sendable {
    static let shared = Interrupts()
    private let lock = NSLock()
    private var groups: Set<pid_t> = []
    private var folders: Set<String> = []
    private var sources: [DispatchSourceSignal] = []

    private init() {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [unowned self] in self.cleanUpAndExit(sig) }
            s.resume()
            sources.append(s)
        }
    }

    func add(group: pid_t) { lock.lock(); groups.insert(group); lock.unlock() }
    func remove(group: pid_t) { lock.lock(); groups.remove(group); lock.unlock() }
    func add(folder: URL) { lock.lock(); folders.insert(folder.path); lock.unlock() }
    func remove(folder: URL) { lock.lock(); folders.remove(folder.path); lock.unlock() }

    private func cleanUpAndExit(_ sig: Int32) -> Never {
        lock.lock()
        for g in groups { kill(-g, SIGKILL) }
        for f in folders { try? FileManager.default.removeItem(atPath: f) }
        exit(128 + sig)
    }
}
