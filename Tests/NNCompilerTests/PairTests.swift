import Foundation
import Testing
@testable import NNCompiler
import NNIR

/// Which kernels run side by side (CEmitter+Pairs): only independent ones, judged by data flow and by the
/// memory plan's buffers (which are reused on the assumption that kernels run one after the other).
@Suite struct PairTests {
    static func emitter(_ example: String, pairMin: Int = CEmitter.defaultPairMin) throws -> CEmitter {
        let forward = try Driver(tools: try Paths.toolchain()).evaluate(Paths.examples.appendingPathComponent(example).path)
        let p = try compile(forward).programs.first { $0.program.kind == .train }!
        return CEmitter(p.program, p.plan, pairMin: pairMin)
    }

    /// The MLP's train program with the loss and its gradient apart again, as they were scheduled before
    /// `mergeLossWithItsGradient`: the loss kernel, two scalar statements (1/n, which the gradient reads, and
    /// loss/n, which uses the loss), the gradient kernel. Returns the emitter and the two kernels' indices.
    static func lossApartFromGradient(pairMin: Int) throws -> (CEmitter, loss: Int, grad: Int) {
        let forward = try Driver(tools: try Paths.toolchain()).evaluate(Paths.examples.appendingPathComponent("fashion_mnist_mlp.swiftnn").path)
        var p = try compile(forward).programs.first { $0.program.kind == .train }!.program
        let m = try #require(p.kernels.firstIndex { $0.kind == .rowwise && !$0.body.isEmpty }, "the loss and its gradient merged")
        try #require(p.kernels[m - 1].kind == .scalar && p.kernels[m + 1].kind == .scalar)
        var loss = p.kernels[m]
        let grad = Kernel(kind: .rowwise, anchor: loss.body[0], space: loss.space)
        loss.body = []
        p.kernels[(m - 1)...(m + 1)] = [loss, p.kernels[m - 1], p.kernels[m + 1], grad]
        p.nameKernels()
        try p.verifySchedule()
        return (CEmitter(p, p.planMemory(elementSize: 4), pairMin: pairMin), m - 1, m + 2)
    }

    /// With small pairs allowed, the loss and its gradient (kept apart) pair across two scalar statements: 1/n,
    /// which the gradient reads, must come before the pair, and loss/n, which uses the loss, after it.
    @Test func scalarsBetweenAPairAreOrderedByWhatTheyUse() throws {
        let (e, loss, grad) = try Self.lossApartFromGradient(pairMin: 1 << 14)
        let pairs = e.pairs
        #expect(pairs[loss] == grad, "\(pairs)")
        let text = CPrinter.print([.function(e.entryFunction())])
        func at(_ s: String) -> String.Index? { text.range(of: s)?.lowerBound }
        let pair = "pair_\(e.program.kernels[loss].principal)_\(e.program.kernels[grad].principal)"
        let (call, inv, mean) = (at("nnrt_par2(\(pair)"), at("one_over_batch = one / batch"), at("loss = softmax_ce_h4 / batch"))
        #expect(call != nil && inv != nil && mean != nil, "\(text)")
        if let call, let inv, let mean {
            #expect(inv < call, "1/n is computed before the pair that reads it")
            #expect(call < mean, "the mean loss after the pair that computes the sum")
        }
    }

    static func index(_ e: CEmitter, _ prefix: String) -> Int {
        e.program.kernels.firstIndex { $0.name.hasPrefix(prefix + "_") }!
    }

    @Test func theMLPsSecondLayerGradientsPair() throws {
        let e = try Self.emitter("fashion_mnist_mlp.swiftnn")
        let (dX2, dW2, dW1) = (Self.index(e, "k_dh0"), Self.index(e, "k_dW2"), Self.index(e, "k_dW0"))
        let pairs = e.pairs
        #expect(pairs == [dX2: dW2], "\(pairs)")
        let (s1, s2, s3) = (e.split(dX2) == nil, e.split(dW2) == nil, e.split(dW1) != nil)
        #expect(s1 && s2, "a paired kernel runs whole")
        #expect(s3, "the first layer's weight gradient stays split")
        let (apart, loss, grad) = try Self.lossApartFromGradient(pairMin: CEmitter.defaultPairMin)
        let (dependent, lossAndGrad) = (e.independent(dX2, dW1), apart.independent(loss, grad))
        #expect(!dependent, "dW1 reads dX2's result")
        #expect(lossAndGrad, "the loss and its gradient only share inputs")
    }

    /// Every pair of kernels without a data dependency where the later one writes into memory the earlier one
    /// read (a buffer reused after its last reader) must not run side by side. The examples' plans have such pairs
    /// (the residual MLP's did until each of its two dropout layers drew its own mask), so this cannot pass by
    /// having nothing to check.
    @Test func reusedBuffersAreNotIndependent() throws {
        var reuses = 0
        for example in ["fashion_mnist_resmlp.swiftnn", "fashion_mnist_mlp.swiftnn", "fashion_mnist_cnn.swiftnn", "fashion_mnist_resnet.swiftnn"] {
            let e = try Self.emitter(example)
            reuses += Self.reusedBuffers(e)
            #expect(e.pairs.allSatisfy { e.independent($0.key, $0.value) }, "\(example)")
        }
        #expect(reuses > 0, "the plans reuse buffers between independent kernels")
        let count = try Self.emitter("fashion_mnist_resmlp.swiftnn").pairs.count
        #expect(count == 4, "four pairs: dX ∥ dW in each residual block's two layers")
    }

    /// The pairs (i, j) of `e`'s kernels with no data flow from i to j where j writes arena memory i reads, each
    /// checked not to run side by side; returns how many there are.
    static func reusedBuffers(_ e: CEmitter) -> Int {
        let ks = e.program.kernels
        var reuses = 0
        for i in ks.indices where ks[i].kind != .scalar {
            for j in ks.indices where j > i && ks[j].kind != .scalar {
                // data flow from i to j, directly or through anything between them
                var reach = Set(ks[i].nodes)
                for k in (i + 1)...j where ks[k].nodes.contains(where: { e.graph[$0].inputs.contains(where: reach.contains) }) {
                    reach.formUnion(ks[k].nodes)
                }
                guard !ks[j].nodes.contains(where: reach.contains) else { continue }
                let clash = e.writes(ks[j], index: j).contains { w in
                    guard case .arena(let off) = e.plan.storage[w] else { return false }
                    let end = off + e.plan.bytes(e.graph.type(w))
                    return e.reads(ks[i]).contains { r in
                        guard case .arena(let o) = e.plan.storage[r] else { return false }
                        return o < end && off < o + e.plan.bytes(e.graph.type(r))
                    }
                }
                if clash {
                    reuses += 1
                    let free = e.independent(i, j)
                    #expect(!free, "\(ks[i].name) and \(ks[j].name) share a buffer")
                }
            }
        }
        return reuses
    }
}
