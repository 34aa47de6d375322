import Foundation
import Testing
@testable import NNCompiler

/// `nncc compile --monitor` is opt-in: without it the C is the golden file byte for byte (dumpsMatchGoldenFiles
/// compiles with the default options); with it the C is the golden file plus the instrumented `train_step_monitor`
/// and its field in MODEL, and nothing else changes.
extension GoldenTests {
    @Test(arguments: examples)
    func monitorOnlyAddsTheInstrumentedStep(_ example: String) throws {
        let driver = Driver(tools: try Paths.toolchain())
        let forward = try driver.evaluate(Paths.examples.appendingPathComponent("\(example).swiftnn").path)
        let plain = try compile(forward), monitored = try compile(forward, options: PipelineOptions(monitor: true))
        let golden = try String(contentsOf: Paths.repo.appendingPathComponent("Tests/Golden/\(example)/c.txt"), encoding: .utf8)
        #expect(plain.cSource == golden, "\(example): the C without --monitor differs from Tests/Golden/\(example)/c.txt")
        var lines = monitored.cSource.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex { $0.hasPrefix("static float train_step_monitor(") }, "\(example): no train_step_monitor")
        let end = try #require(lines[start...].firstIndex(of: "}"))
        let calls = lines[start...end].filter { $0.contains("nnrt_monitor_act(ctx, ") }
        #expect(!calls.isEmpty, "\(example): train_step_monitor hands no activation to the monitor")
        // the function, its comment and the blank line before it; then MODEL's field
        let first = lines[start - 2].isEmpty ? start - 2 : start - 1
        lines.removeSubrange(first...end)
        lines.removeAll { $0.contains(".train_step_monitor = train_step_monitor") }
        let stripped = lines.joined(separator: "\n")
        #expect(stripped == golden, "\(example): --monitor changed more than the instrumented step")
    }
}
