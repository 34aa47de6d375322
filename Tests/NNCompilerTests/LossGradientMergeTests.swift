import Foundation
import Testing
@testable import NNCompiler
import NNIR

/// `Program.mergeLossWithItsGradient`: softmax cross-entropy and its gradient in one row-wise kernel, with the
/// scalar statements between them ordered by what they use. (The merged kernel's numbers are covered by the
/// trajectory tests against NumPy and by the golden C; it computes the same statements as the two kernels.)
@Suite struct LossGradientMergeTests {
    static func programs(fusion: Bool) throws -> [ProgramKind: Program] {
        let forward = try Driver(tools: try Paths.toolchain())
            .evaluate(Paths.examples.appendingPathComponent("fashion_mnist_mlp.swiftnn").path)
        let model = try compile(forward, options: PipelineOptions(fusion: fusion))
        return Dictionary(uniqueKeysWithValues: model.programs.map { ($0.program.kind, $0.program) })
    }

    @Test func theMLPsLossAndGradientShareOneKernel() throws {
        let ps = try Self.programs(fusion: true)
        for kind in [ProgramKind.train, .gradcheck] {
            let p = try #require(ps[kind])
            let ops = { (k: Kernel) in k.nodes.map { p.graph[$0].op } }
            let merged = p.kernels.indices.filter { ops(p.kernels[$0]) == [.softmaxCrossEntropy, .softmaxCrossEntropyGrad] }
            #expect(merged.count == 1, "\(kind): \(p.kernels.map(\.name))")
            let alone = p.kernels.filter { $0.kind == .rowwise && $0.body.isEmpty }
            #expect(alone.isEmpty, "\(kind): no row-wise kernel left alone: \(alone.map(\.name))")
            guard let m = merged.first else { continue }
            // The gradient's seed (1/n) is computed before the merged kernel; the mean loss (sum/n) after it.
            let grad = p.kernels[m].body[0], loss = p.kernels[m].anchor!
            let at = p.kernelIndex()
            let seed = p.graph[grad].inputs[0]
            #expect(at[seed]! < m, "the seed comes first")
            let users = p.graph.users()[loss.index]
            #expect(!users.isEmpty && users.allSatisfy { at[$0].map { $0 > m } ?? true }, "what uses the loss comes after")
            try p.verifySchedule()
        }
        // Evaluation computes the loss without its gradient: nothing to merge.
        let eval = try #require(ps[.eval])
        #expect(eval.kernels.contains { $0.kind == .rowwise && $0.body.isEmpty && eval.graph[$0.anchor!].op == .softmaxCrossEntropy })
    }

    @Test func withoutFusionNothingMerges() throws {
        let p = try #require(try Self.programs(fusion: false)[.train])
        #expect(p.kernels.allSatisfy { $0.kind != .rowwise || $0.body.isEmpty }, "\(p.kernels.map(\.name))")
    }
}
