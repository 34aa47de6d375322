import ArgumentParser
import Foundation
import NNCompiler

/// The options of every command that evaluates a model file (`compile`, `export`): the cache, the driver's
/// notes and the evaluation's time limit.
struct ModelFileOptions: ParsableArguments {
    @Flag(help: "Do not read the cache (results are still written to it).")
    var noCache = false

    @Flag(help: "Say what the driver does and which steps came from the cache.")
    var verbose = false

    @Option(help: ArgumentHelp("Stop running the model file after this many seconds (it is code: see docs/nncc.md).",
                               valueName: "seconds"))
    var evalTimeout: Double = 60

    func validate() throws {
        guard evalTimeout > 0, evalTimeout.isFinite else {
            throw ValidationError("--eval-timeout must be a positive number of seconds, got \(evalTimeout)")
        }
    }

    /// A driver set up with these options.
    func driver() throws -> Driver {
        var driver = Driver(tools: try Toolchain.locate())
        driver.useCache = !noCache
        driver.evalTimeout = evalTimeout
        if verbose { driver.note = { FileHandle.standardError.write(Data("nncc: \($0)\n".utf8)) } }
        return driver
    }
}
