import Foundation
import Testing
@testable import NNCompiler

/// nncc's one error style (`file:line:col: error: …` with a site, `nncc: error: …` without) and its exit
/// statuses (1 a failure, 2 a bad command line), case by case: the exact text where it is fixed, the parts
/// that matter where swiftc writes the rest.
@Suite struct ErrorReportTests {
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        /// The model file's source, written to `<name>.swiftnn` (its path is `$M` in args and messages); nil: none.
        var source: String?
        var args: [String]
        var status: Int32
        /// stderr exactly, after replacing `$M` and `$D` (the test's folder), or nil.
        var exactly: String?
        var contains: [String] = []
        var lacks: [String] = []
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "unknown_option", source: "", args: ["compile", "$M", "--fuse-harder"], status: 2,
             exactly: "nncc: error: unknown option '--fuse-harder' (see 'nncc compile --help')\n"),
        Case(name: "bad_stage", source: "", args: ["compile", "$M", "--emit", "assembly"], status: 2, exactly: nil,
             contains: ["nncc: error: ", "assembly", "--emit", "(see 'nncc compile --help')"]),
        Case(name: "unknown_command", source: nil, args: ["frobnicate"], status: 2, exactly: nil,
             contains: ["nncc: error: ", "frobnicate", "(see 'nncc --help')"]),
        Case(name: "missing_argument", source: nil, args: ["compile"], status: 2, exactly: nil,
             contains: ["nncc: error: missing expected argument '<file>' (see 'nncc compile --help')"]),
        Case(name: "bad_eval_timeout", source: "", args: ["compile", "$M", "--eval-timeout", "0"], status: 2,
             exactly: "nncc: error: --eval-timeout must be a positive number of seconds, got 0.0 (see 'nncc compile --help')\n"),
        Case(name: "missing_model", source: nil, args: ["compile", "$D/nope.swiftnn"], status: 1,
             exactly: "nncc: error: $D/nope.swiftnn: cannot read the model file (no such file)\n"),
        Case(name: "directory_as_model", source: nil, args: ["compile", "$D"], status: 1,
             exactly: "nncc: error: $D: is a directory, not a model file (give the .swiftnn file itself)\n"),
        Case(name: "model_exits_3", source: "import NNDSL\nimport Foundation\nexit(3)\n", args: ["compile", "$M"], status: 1,
             exactly: "nncc: error: $M: the model file exited with status 3 before nncc got its graph\n"),
        Case(name: "index_out_of_range", source: "import NNDSL\nlet sizes = [784, 10]\nlet k = sizes[5]\n",
             args: ["compile", "$M"], status: 1,
             exactly: nil, contains: ["$M:3:", ": error: Index out of range (a Swift runtime error while the model file ran)\n"],
             lacks: ["ContiguousArrayBuffer", "nncc: error"]),
        // swiftc quotes the line: numbered as in the model file (line 3), without the driver's #sourceLocation.
        Case(name: "swift_error_snippet", source: "import NNDSL\nlet a = 1\nlet c: Int = \"x\"\nlet d = 2\n",
             args: ["compile", "$M"], status: 1, exactly: nil,
             contains: ["$M:3:14: error: cannot convert value of type 'String' to specified type 'Int'",
                        "2 | let a = 1\n3 | let c: Int = \"x\"\n", "4 | let d = 2"],
             lacks: ["#sourceLocation", "4 | let c", "nncc: error"]),
        Case(name: "dsl_diagnostic", source: "import NNDSL\ntrain(Sequential { Linear(4, 2) }, input: 3, loss: .mse, optimizer: Adam())\n",
             args: ["compile", "$M"], status: 1, exactly: nil, contains: ["$M:2:"], lacks: ["nncc: error"]),
        Case(name: "plot_missing_file", source: nil, args: ["plot", "$D/nope.jsonl"], status: 1, exactly: nil,
             contains: ["nncc: error: $D/nope.jsonl: no such file"]),
    ]

    @Test(arguments: cases)
    func reportsInOneStyle(_ c: Case) throws {
        let dir = Paths.tempDir(c.name)
        let model = dir.appendingPathComponent(c.name + ".swiftnn").path
        if let source = c.source { try source.write(toFile: model, atomically: true, encoding: .utf8) }
        let fill = { (s: String) in s.replacingOccurrences(of: "$M", with: model).replacingOccurrences(of: "$D", with: dir.path) }
        var r = try Run.run(Paths.nncc, c.args.map(fill))
        // Where bwrap cannot run, nncc notes that the model file runs without it; that note is not the report.
        r.stderr = r.stderr.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("nncc: note: ") }.joined(separator: "\n")
        #expect(r.status == c.status, "exit \(r.status): \(r.stderr)")
        if let exactly = c.exactly { #expect(r.stderr == fill(exactly)) }
        for s in c.contains { #expect(r.stderr.contains(fill(s)), "expected '\(fill(s))' in: \(r.stderr)") }
        for s in c.lacks { #expect(!r.stderr.contains(fill(s)), "unexpected '\(fill(s))' in: \(r.stderr)") }
    }

    @Test func helpIsNotAnError() throws {
        let r = try Run.run(Paths.nncc, ["compile", "--help"])
        #expect(r.status == 0 && r.stdout.contains("--emit") && r.stderr.isEmpty, "\(r.stderr)")
    }
}
