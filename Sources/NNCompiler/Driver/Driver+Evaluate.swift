import Foundation
import NNIR

extension Driver {
    // ---- evaluate: model.swiftnn → forward graph

    /// Compiles the model file against the DSL library and runs it to get the forward graph. swiftc's and the
    /// DSL's diagnostics point at the model file, thanks to `#sourceLocation`.
    public func evaluate(_ path: String) throws -> Graph {
        let source = try readModelFile(path)
        var h = ContentHash()
        h.update(tools.buildID); h.update(path); h.update(source)
        let cached = tools.cacheDir.appendingPathComponent("graph/\(h.hex).json")
        if useCache, let data = try? Data(contentsOf: cached), let g = try? JSONDecoder().decode(Graph.self, from: data) {
            note("evaluate: cached \(cached.path)")
            return g
        }
        sweepAbandonedScratch()
        let work = try scratch("eval-\(h.hex)")
        Interrupts.shared.add(folder: work)
        defer { try? FileManager.default.removeItem(at: work); Interrupts.shared.remove(folder: work) }
        let main = work.appendingPathComponent("main.swift")
        let header = "#sourceLocation(file: \"\(path.replacingOccurrences(of: "\"", with: "\\\""))\", line: 1)\n"
        try (Data(header.utf8) + source).write(to: main)
        let exe = work.appendingPathComponent("model").path
        let dsl = tools.dslDir.path
        let swiftc = try Subprocess.run(tools.swiftc, [
            "-I", dsl + "/Modules", "-L", dsl, "-lNNDSL", "-Xlinker", "-rpath", "-Xlinker", dsl,
            "-g", "-module-name", "Model", main.path, "-o", exe])
        if swiftc.status != 0 {
            throw Diagnostic.preformatted(Driver.renumberSnippets(cleanDiagnostics(swiftc.stderr + swiftc.stdout), of: path))
        }
        let out = work.appendingPathComponent("graph.json")
        // -g and Swift's backtracer let a runtime error name its line in the model file (modelFailure).
        let sandbox = ModelSandbox(timeout: evalTimeout)
        if sandbox.bwrap == nil { notice(ModelSandbox.notice) }
        let (run, timedOut) = try sandbox.run(exe, env: ["NNCC_GRAPH_OUT": out.path, "SWIFT_BACKTRACE": Driver.backtrace],
                                              scratch: work, libraries: [tools.dslDir])
        if timedOut {
            throw Diagnostic.error("\(path): the model file did not finish within \(Driver.seconds(evalTimeout)) "
                              + "(--eval-timeout); does it loop forever?")
        }
        if let failure = Driver.modelFailure(run, path: path) { throw failure }
        guard let data = try? Data(contentsOf: out) else {
            throw Diagnostic.error("\(path): the model file never calls train(…); end it with train(model, input: …, loss: …, optimizer: …)")
        }
        let g: Graph
        do { g = try JSONDecoder().decode(Graph.self, from: data) } catch {
            throw Diagnostic.error("internal error: cannot read the graph of \(path): \(error)")
        }
        try store(data, at: cached)
        return g
    }

    static func seconds(_ t: Double) -> String {
        t == t.rounded() ? "\(Int(t)) s" : "\(t) s"
    }

    /// Removes the scratch folders of nncc processes that are gone (killed with SIGKILL, which leaves no chance
    /// to clean up): each folder's name holds its process's pid.
    func sweepAbandonedScratch() {
        let work = tools.cacheDir.appendingPathComponent("work")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: work.path)) ?? [] {
            let parts = name.split(separator: "-")
            guard parts.count >= 3, let pid = pid_t(parts[parts.count - 2]), pid != getpid(),
                  kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(at: work.appendingPathComponent(name))
        }
    }

    /// The model file's bytes, or an error that says why not: missing, a directory, or unreadable.
    func readModelFile(_ path: String) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw Diagnostic.error("\(path): cannot read the model file (no such file)")
        }
        if isDirectory.boolValue {
            throw Diagnostic.error("\(path): is a directory, not a model file (give the .swiftnn file itself)")
        }
        guard let source = FileManager.default.contents(atPath: path) else {
            throw Diagnostic.error("\(path): cannot read the model file (permission denied)")
        }
        return source
    }

    /// swiftc prints each error with the offending line and a caret; keep that, drop the driver's noise.
    func cleanDiagnostics(_ s: String) -> String {
        s.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("error: fatalError") && !$0.contains("main.swift") }
            .joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// swiftc numbers the source lines it quotes (`16 | let x = …`) by their place in the scratch copy, whose
    /// first line is the `#sourceLocation` directive: one more than the model file's own numbers, which the
    /// `file:line:col` of the message gets right. Renumbers the quoted lines of the model file's diagnostics and
    /// drops the directive's line.
    static func renumberSnippets(_ text: String, of path: String) -> String {
        var inModel = false
        var out: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let colon = line.range(of: ":\\d+:\\d+: (error|warning|note|remark):", options: .regularExpression) {
                inModel = line[..<colon.lowerBound] == path
            }
            guard inModel, let bar = line.range(of: "^ *\\d+ \\|", options: .regularExpression) else {
                out.append(line)
                continue
            }
            let numberText = line[bar].dropLast(2)
            let number = Int(numberText.trimmingCharacters(in: .whitespaces))! - 1
            if number < 1 { continue }  // the directive itself
            let padded = String(repeating: " ", count: max(0, numberText.count - String(number).count)) + String(number)
            out.append(Substring(padded + " |" + line[bar.upperBound...]))
        }
        return out.joined(separator: "\n")
    }

    /// What went wrong when the evaluated model did not exit 0, in words: a DSL diagnostic passes through as it
    /// is; a Swift runtime error (an index out of range, say) is reported at the model file, not inside Swift's
    /// standard library; any other exit says its status or signal.
    static func modelFailure(_ run: Subprocess, path: String) -> Diagnostic? {
        if run.status == 0 && run.signal == nil { return nil }
        let stderr = run.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        if run.signal == nil && run.status == 1 && isDiagnostic(stderr) { return .preformatted(stderr) }
        if let fatal = swiftRuntimeError(stderr) {
            if let site = crashSite(stderr, path: path) {
                return .preformatted("\(site): error: \(fatal) (a Swift runtime error while the model file ran)")
            }
            return Diagnostic.error("\(path): the model file stopped with a Swift runtime error: \(fatal)")
        }
        let how = run.signal.map { "was killed by signal \($0) (\(signalName($0)))" } ?? "exited with status \(run.status)"
        let said = stderr.isEmpty ? "" : "; it printed:\n" + stderr
        return Diagnostic.error("\(path): the model file \(how) before nncc got its graph\(said)")
    }

    /// The DSL's diagnostics: `file:line:col: error: …` or `error: …` lines.
    static func isDiagnostic(_ s: String) -> Bool {
        guard let first = s.split(separator: "\n").first else { return false }
        return first.hasPrefix("error: ") || first.range(of: "^[^ ]+:\\d+:\\d+: error: ", options: .regularExpression) != nil
    }

    /// "Fatal error: Index out of range" out of Swift's crash report, whose location
    /// (Swift/ContiguousArrayBuffer.swift:690) is inside the standard library and of no use to the model's author.
    static func swiftRuntimeError(_ s: String) -> String? {
        guard let line = s.split(separator: "\n").first(where: { $0.contains("Fatal error: ") }),
              let r = line.range(of: "Fatal error: ") else { return nil }
        let what = line[r.upperBound...].trimmingCharacters(in: .whitespaces)
        return what.isEmpty ? "fatal error" : what
    }

    /// Swift's backtracer, without colors, registers or images: the frames alone, to find the model file's line.
    static let backtrace = "enable=yes,interactive=no,color=no,sanitize=no,threads=crashed,registers=none,images=none,limit=32"

    /// The first frame of a backtrace in the model file: "… main + 117 in model at /path/m.swiftnn:3:8".
    static func crashSite(_ s: String, path: String) -> String? {
        for line in s.split(separator: "\n") {
            guard let at = line.range(of: " at \(path):") else { continue }
            let site = line[at.lowerBound...].dropFirst(4)
            if site.range(of: ":\\d+:\\d+$", options: .regularExpression) != nil { return String(site) }
        }
        return nil
    }

    static func signalName(_ s: Int32) -> String {
        [4: "SIGILL, a Swift runtime trap", 5: "SIGTRAP, a Swift runtime trap", 6: "SIGABRT", 9: "SIGKILL",
         11: "SIGSEGV", 15: "SIGTERM", 24: "SIGXCPU, the CPU time limit"][s] ?? "signal \(s)"
    }
}
