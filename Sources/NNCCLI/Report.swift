import ArgumentParser
import Foundation
import NNIR
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
        case let d as Diagnostic:
            self.init(d, .failure)
        default:
            // ArgumentParser: "Unknown option '--x'" and friends, with a hint that names the subcommand's help.
            let message = NNCC.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            let sub = arguments.first.flatMap { a in NNCC.configuration.subcommands.first { $0._commandName == a } }
            let help = sub.map { "nncc \($0._commandName) --help" } ?? "nncc --help"
            self.init(.error("\(Report.lowercasedFirst(message)) (see '\(help)')"), .usage)
        }
    }

    init(_ text: String, _ status: NNCCExit) {
        self.text = text.hasSuffix("\n") ? text : text + "\n"
        self.status = status
    }

    /// A diagnostic with a site (or swiftc's, which have theirs) as it is, one without after `nncc: `.
    init(_ d: Diagnostic, _ status: NNCCExit) {
        self.init(d.site != nil || d.isPreformatted ? d.description : "nncc: " + d.description, status)
    }

    /// "Unknown option" → "unknown option", as clang and swiftc write their messages; "NNCC…" stays.
    static func lowercasedFirst(_ s: String) -> String {
        guard let first = s.first, first.isUppercase, s.dropFirst().first?.isLowercase == true else { return s }
        return first.lowercased() + s.dropFirst()
    }
}
