import ArgumentParser
import Foundation
import NNCompiler
import NNExport

/// nncc's exit statuses, documented in docs/nncc.md.
public enum NNCCExit: Int32 {
    case success = 0
    /// The model file has an error, an input file cannot be read, or the build failed.
    case failure = 1
    /// The command line is wrong: an unknown subcommand or option, a bad value, a missing argument.
    case usage = 2
}

/// How nncc reports a failure, in one style: `file:line:col: error: …` where the mistake has a site in a file
/// (swiftc's and the DSL's diagnostics, compiler errors with a site), `nncc: error: …` otherwise.
struct Report: Equatable {
    var text: String
    var status: NNCCExit

    /// `arguments` (without the program name) only name the subcommand in a usage error's hint.
    init(_ error: Error, arguments: [String]) {
        switch error {
        case let e as DriverError:
            self.init(e.isDiagnostics ? e.description : Report.prefixed(e.description), .failure)
        case let e as CompileError:
            self.init(e.site == nil ? Report.prefixed(e.message) : e.description, .failure)
        case let e as PlotError:
            self.init(Report.prefixed(e.description), .failure)
        case let e as ExportError:
            self.init(Report.prefixed(e.message), .failure)
        default:
            // ArgumentParser: "Unknown option '--x'" and friends, with a hint that names the subcommand's help.
            let message = NNCC.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            let sub = arguments.first.flatMap { a in NNCC.configuration.subcommands.first { $0._commandName == a } }
            let help = sub.map { "nncc \($0._commandName) --help" } ?? "nncc --help"
            self.init(Report.prefixed("\(Report.lowercasedFirst(message)) (see '\(help)')"), .usage)
        }
    }

    init(_ text: String, _ status: NNCCExit) {
        self.text = text.hasSuffix("\n") ? text : text + "\n"
        self.status = status
    }

    static func prefixed(_ message: String) -> String { "nncc: error: " + message }

    /// "Unknown option" → "unknown option", as clang and swiftc write their messages; "NNCC…" stays.
    static func lowercasedFirst(_ s: String) -> String {
        guard let first = s.first, first.isUppercase, s.dropFirst().first?.isLowercase == true else { return s }
        return first.lowercased() + s.dropFirst()
    }
}
