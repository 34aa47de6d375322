import ArgumentParser
import Foundation
import NNCompiler
import NNIR

/// The `nncc` command: compile model files into native trainers.
public struct NNCC: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "nncc",
        abstract: "Compile a neural network, its loss and its optimizer, written in Swift, into a native C trainer.",
        version: NNCCVersion.number,  // `--version` itself is answered in nnccMain, with the commit
        subcommands: [Compile.self, Export.self, Plot.self])

    public init() {}
}

extension Stage: ExpressibleByArgument {}

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile a model file (model.swiftnn) into a trainer, or print one stage of the pipeline.",
        discussion: """
        Stages: graph (forward graph), grad (with backward pass and optimizer update), fused (kernels), \
        plan (memory plan), c (the generated C), binary (the trainer, the default), library (a folder with an \
        inference library in C: -o out/NAME writes NAME.h, NAME.c, a Makefile and example.c; see docs/library.md).
        """)

    @Argument(help: "The model file, Swift source that imports NNDSL.")
    var file: String

    @Option(name: .shortAndLong, help: "Where to write the trainer or the dump (a dump goes to stdout without it).")
    var output: String?

    @Option(help: "The stage to stop at: graph, grad, fused, plan, c or binary; or library (an inference library's folder).")
    var emit: Stage = .binary

    @Flag(help: "Skip fusion: the unfused reference path, for bisecting a miscompile.")
    var noFusion = false

    @Flag(help: "Build for data-parallel training under mpirun (Open MPI; docs/distributed.md).")
    var mpi = false
    @Flag(help: "Also emit an instrumented train step, for the trainer's --monitor every:N (per-layer statistics).")
    var monitor = false

    @OptionGroup var options: ModelFileOptions

    func run() throws {
        let driver = try options.driver()
        // The runtime compiles (when not cached) while swiftc evaluates the model file. If anything fails first,
        // the error waits for it, so that no clang is left writing into the cache after nncc exits.
        let runtime = emit == .binary ? try driver.startRuntimeBuild() : nil
        defer { _ = try? runtime?.objects() }
        let forward = try driver.evaluate(file)
        let model = try NNCompiler.compile(forward, options: PipelineOptions(fusion: !noFusion, mpi: mpi, monitor: monitor))
        if emit == .library {
            let out = output ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
            try driver.writeLibrary(model, to: URL(fileURLWithPath: out))
        } else if emit == .binary {
            let out = output ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
            try driver.build(cSource: model.cSource, output: URL(fileURLWithPath: out), runtime: runtime, mpi: mpi)
            driver.note("wrote \(out)")
        } else if let output {
            try Data(model.dump(emit).utf8).write(to: URL(fileURLWithPath: output))
        } else {
            print(model.dump(emit), terminator: "")
        }
    }
}

/// The entry point of the nncc executable: a failure becomes one report (see `Report`) and an exit status
/// (`NNCCExit`), never a trace.
public func nnccMain(_ arguments: [String]? = nil) {
    let args = arguments ?? Array(CommandLine.arguments.dropFirst())
    if args == ["--version"] {
        print(NNCCVersion.describe())
        exit(0)
    }
    do {
        var command = try NNCC.parseAsRoot(arguments)
        try command.run()
    } catch {
        if NNCC.exitCode(for: error) == .success { NNCC.exit(withError: error) }  // --help
        let report = Report(error, arguments: args)
        FileHandle.standardError.write(Data(report.text.utf8))
        exit(report.status.rawValue)
    }
}
