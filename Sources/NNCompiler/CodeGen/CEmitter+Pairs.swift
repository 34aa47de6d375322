import NNIR

/// Kernels that run side by side: two independent kernels of similar size, one on each thread.
///
/// Splitting a mid-sized GEMM in two costs more than half of it (each half re-reads the shared operand, and
/// the two halves end at different times); two independent mid-sized kernels, such as a layer's input- and
/// weight-gradient GEMMs (dY·W and dYᵀ·X), can instead each run whole on its own thread. Measured in the MLP
/// trainer (per step, four runs each, interleaved): dX2 and dW2 (128×256×128 each) 102–114 µs split one after
/// the other, 92–100 µs side by side. The first-layer GEMMs are 12× larger and stay split; dW1 has no partner.
/// Small pairs gained nothing: the softmax cross-entropy's loss and gradient (2 × 7 µs) and dX3/dW3 (9 and
/// 4 µs) took as long side by side as in turn, the second thread spending the difference on fetching their
/// operands from the first one's cache.
extension CEmitter {
    /// Kernels of at most this many multiply-adds (or element operations) pair; larger ones split instead.
    static let pairMax = 1 << 23
    /// Below this, moving the operands to the other core costs about what running side by side saves (the
    /// emitter's `pairMin`; tests lower it to exercise small pairs).
    static let defaultPairMin = 1 << 20

    /// The pairs of this program: first kernel → second. Found greedily in schedule order: kernel i pairs
    /// with the next non-scalar kernel j when both are between `pairMin` and `pairMax` within a factor of
    /// two of each other, profile as the same kind, draw no random numbers, j reads nothing that i computes
    /// (the scalar statements between them that j reads may not depend on i), and neither writes memory the
    /// other reads or writes (the memory plan reuses buffers assuming one kernel after the other).
    func findPairs() -> [Int: Int] {
        guard !f64 else { return [:] }
        let ks = program.kernels
        var pairs: [Int: Int] = [:]
        var i = 0
        while i < ks.count {
            guard ks[i].kind != .scalar, let j = ks.indices.dropFirst(i + 1).first(where: { ks[$0].kind != .scalar }) else { i += 1; continue }
            if canPair(i, j) {
                pairs[i] = j
                i = j + 1
            } else {
                i = j
            }
        }
        return pairs
    }

    private func canPair(_ i: Int, _ j: Int) -> Bool {
        let (a, b) = (program.kernels[i], program.kernels[j])
        let (ca, cb) = (cost(a), cost(b))
        return ca >= pairMin && cb >= pairMin && ca <= Self.pairMax && cb <= Self.pairMax
            && max(ca, cb) <= 2 * min(ca, cb) && profileKind(a) == profileKind(b) && !drawsRandom(a) && !drawsRandom(b)
            && independent(i, j)
    }

    /// Whether kernel j (after i, with only scalar statements between them) can run at the same time as i: it
    /// reads nothing that i computes, directly or through a scalar between them, and neither writes memory the
    /// other reads or writes.
    func independent(_ i: Int, _ j: Int) -> Bool {
        let (a, b) = (program.kernels[i], program.kernels[j])
        let fromA = results(of: i, before: j)
        guard !b.nodes.contains(where: { graph[$0].inputs.contains(where: fromA.contains) }) else { return false }
        let (ra, wa, rb, wb) = (reads(a).compactMap(region), writes(a, index: i).compactMap(region),
                                reads(b).compactMap(region), writes(b, index: j).compactMap(region))
        func overlap(_ x: [Region], _ y: [Region]) -> Bool { x.contains { p in y.contains { p.overlaps($0) } } }
        return !overlap(wa, rb + wb) && !overlap(wb, ra)
    }

    /// The nodes of kernel i and of the kernels between i and j that use them, directly or in turn.
    func results(of i: Int, before j: Int) -> Set<ValueID> {
        var reach = Set(program.kernels[i].nodes)
        for s in program.kernels[(i + 1)..<j] where s.nodes.contains(where: { graph[$0].inputs.contains(where: reach.contains) }) {
            reach.formUnion(s.nodes)
        }
        return reach
    }

    /// Work in multiply-adds (a GEMM) or element operations, at the configured batch size.
    private func cost(_ k: Kernel) -> Int {
        let batch = graph.config.batchSize
        func count(_ s: Shape) -> Int { s.fixedCount * (s.batched ? batch : 1) }
        switch k.kind {
        case .gemm:
            guard let a = k.anchor, case .matmul(let ta, _) = graph[a].op else { return 0 }
            let x = graph.type(graph[a].inputs[0]).shape
            let inner = ta ? (x.batched ? batch : x.dims[0]) : x.dims.last!
            return count(k.space) * inner
        case .rowwise: return count(k.space) * 16   // an exp and a few flops per element
        case .loop, .arenaUpdate: return count(k.space) * max(1, k.body.count)
        case .scalar, .window: return 0   // a window kernel uses both threads itself
        }
    }

    func profileKind(_ k: Kernel) -> String {
        switch k.kind {
        case .gemm: return "NNRT_PROF_GEMM"
        case .rowwise: return "NNRT_PROF_ROWWISE"
        case .arenaUpdate: return "NNRT_PROF_OPTIMIZER"
        case .loop: return k.body.contains(where: program.isAssign) ? "NNRT_PROF_OPTIMIZER" : "NNRT_PROF_ELEMENTWISE"
        case .window:
            if case .conv2d = graph[k.anchor!].op { return "NNRT_PROF_CONV" }
            switch graph[k.nodes.last!].op {   // a max pooling's backward with the convolution's gradients: those
            case .conv2dGradInput, .conv2dGradWeight, .conv2dGradBias: return "NNRT_PROF_CONV_BACKWARD"
            default: return "NNRT_PROF_POOL"
            }
        case .scalar: return ""
        }
    }

    /// A span of one buffer: the arena in bytes, the parameter, gradient and state arenas in elements.
    struct Region {
        var space: String, lo: Int, hi: Int
        func overlaps(_ o: Region) -> Bool { space == o.space && lo < o.hi && o.lo < hi }
    }

    func region(_ v: ValueID) -> Region? {
        let n = graph.type(v).shape.fixedCount
        switch plan.storage[v] ?? .register {
        case .arena(let off): return Region(space: "A", lo: off, hi: off + plan.bytes(of: v, graph.type(v)))
        case .param(let off): return Region(space: "P", lo: off, hi: off + n)
        case .grad(let off): return Region(space: "G", lo: off, hi: off + n)
        case .state(let slot, let off): return Region(space: "S", lo: slot * layout.total + off, hi: slot * layout.total + off + n)
        case .input(let name): return Region(space: "in:" + name, lo: 0, hi: 1)
        case .output: return Region(space: "out", lo: 0, hi: 1)
        case .local: return Region(space: "s\(v.index)", lo: 0, hi: 1)
        case .register: return nil
        }
    }

    /// The struct of both kernels' arguments (fields a0_… and a1_…) and the function nnrt_par2 calls: part 0
    /// (the worker) runs the first kernel, part 1 (the caller) the second.
    func pairWrapper(_ i: Int, _ j: Int) -> [CTopLevel] {
        let (a, b) = (program.kernels[i], program.kernels[j])
        let name = pairName(i, j)
        let (pa, pb) = (kernelParameters(i), kernelParameters(j))
        let fields = pa.map { CParam(type: $0.type, name: "a0_" + $0.name).field } + pb.map { CParam(type: $0.type, name: "a1_" + $0.name).field }
        let callA = CExpr.call(kernelName(a), pa.map { .member(.id("a"), "a0_" + $0.name) })
        let callB = CExpr.call(kernelName(b), pb.map { .member(.id("a"), "a1_" + $0.name) })
        return [.structType("\(name)_args", fields),
                .function(CFunction(comment: ["\(kernelName(a)) on the worker (part 0) and \(kernelName(b)) on the caller, side by side"],
                                    signature: "static void \(name)(void *arg, int part)",
                                    body: [.decl("const \(name)_args *", "a", .cast("const \(name)_args *", .id("arg"))),
                                           .cond(.binary("==", .id("part"), .int(0)), [.expr(callA)]),
                                           .cond(.binary("!=", .id("part"), .int(0)), [.expr(callB)])]))]
    }

    func pairName(_ i: Int, _ j: Int) -> String {
        "\(program.kind.rawValue)_pair_\(program.kernels[i].name.split(separator: "_")[0])_\(program.kernels[j].name.split(separator: "_")[0])"
    }

    /// The call of pair (i, j) in the entry point.
    func pairCall(_ i: Int, _ j: Int) -> CStmt {
        let name = pairName(i, j)
        return .block([.decl("const \(name)_args", "a", .initList(kernelArguments(i) + kernelArguments(j))),
                       profiled(.expr(.call("nnrt_par2", [.id(name), .cast("void *", .prefix("&", .id("a")))])),
                                program.kernels[i], index: i)])
    }
}
