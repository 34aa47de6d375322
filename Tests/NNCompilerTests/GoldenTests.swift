import Foundation
import Testing
@testable import NNCompiler

/// Every example's dump at every text stage, compared with Tests/Golden/<example>/<stage>.txt.
/// Regenerate deliberately with `NNCC_UPDATE_GOLDEN=1 swift test --filter GoldenTests`, then read the diff.
@Suite struct GoldenTests {
    static let examples = ["fashion_mnist_mlp", "sine_regression", "fashion_mnist_resmlp", "fashion_mnist_cnn", "fashion_mnist_aux"]
    static let stages: [Stage] = [.graph, .grad, .fused, .plan, .c]

    @Test(arguments: examples)
    func dumpsMatchGoldenFiles(_ example: String) throws {
        let driver = Driver(tools: try Paths.toolchain())
        let forward = try driver.evaluate(Paths.examples.appendingPathComponent("\(example).swiftnn").path)
        let model = try compile(forward)
        let update = ProcessInfo.processInfo.environment["NNCC_UPDATE_GOLDEN"] == "1"
        for stage in Self.stages {
            let file = Paths.repo.appendingPathComponent("Tests/Golden/\(example)/\(stage.rawValue).txt")
            let text = model.dump(stage)
            if update {
                try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                try text.write(to: file, atomically: true, encoding: .utf8)
                continue
            }
            let golden = try #require(try? String(contentsOf: file, encoding: .utf8),
                                      "missing \(file.path); run with NNCC_UPDATE_GOLDEN=1 to create it")
            if text != golden {
                let a = text.split(separator: "\n", omittingEmptySubsequences: false)
                let b = golden.split(separator: "\n", omittingEmptySubsequences: false)
                let line = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
                Issue.record("""
                    \(example) --emit=\(stage.rawValue) differs from \(file.lastPathComponent) at line \(line + 1):
                      got:    \(line < a.count ? String(a[line]) : "<end>")
                      golden: \(line < b.count ? String(b[line]) : "<end>")
                    """)
            }
        }
    }

    /// The dumps are deterministic: two compilations of the same graph print the same text.
    @Test func dumpsAreDeterministic() throws {
        let driver = Driver(tools: try Paths.toolchain())
        let forward = try driver.evaluate(Paths.examples.appendingPathComponent("fashion_mnist_mlp.swiftnn").path)
        let (a, b) = (try compile(forward), try compile(forward))
        for stage in Self.stages { #expect(a.dump(stage) == b.dump(stage), "\(stage)") }
    }
}
