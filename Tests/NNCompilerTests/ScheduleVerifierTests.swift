import Foundation
import Testing
@testable import NNCompiler
import NNIR

/// The schedule verifier accepts what the fusion passes produce and rejects broken orders.
@Suite struct ScheduleVerifierTests {
    static func trainProgram(fusion: Bool = true) throws -> Program {
        let forward = try Driver(tools: try Paths.toolchain())
            .evaluate(Paths.examples.appendingPathComponent("fashion_mnist_resmlp.swiftnn").path)
        return try compile(forward, options: PipelineOptions(fusion: fusion)).programs.first { $0.program.kind == .train }!.program
    }

    @Test func acceptsTheFusedAndUnfusedSchedules() throws {
        try Self.trainProgram(fusion: true).verifySchedule()
        try Self.trainProgram(fusion: false).verifySchedule()
    }

    @Test func rejectsAnOptimizerUpdateBeforeTheBackwardPass() throws {
        var p = try Self.trainProgram()
        let update = p.kernels.lastIndex { if case .arenaUpdate = $0.kind { return true } else { return false } }!
        p.kernels.insert(p.kernels.remove(at: update), at: 0)
        #expect(throws: Diagnostic.self) { try p.verifySchedule() }
    }

    @Test func rejectsAConsumerScheduledBeforeItsProducer() throws {
        var p = try Self.trainProgram()
        let gemms = p.kernels.indices.filter { p.kernels[$0].kind == .gemm }
        p.kernels.swapAt(gemms[0], gemms[1])   // the second layer's GEMM reads the first one's output
        #expect(throws: Diagnostic.self) { try p.verifySchedule() }
    }

    @Test func rejectsANodeComputedTwice() throws {
        var p = try Self.trainProgram()
        let i = p.kernels.firstIndex { $0.kind == .loop && !$0.body.isEmpty }!
        p.kernels.append(p.kernels[i])
        #expect(throws: Diagnostic.self) { try p.verifySchedule() }
    }
}
