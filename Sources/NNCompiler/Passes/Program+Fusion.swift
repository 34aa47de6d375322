import NNIR

extension Program {
    /// Schedules the program's nodes into kernels, in graph order.
    ///
    /// With `fusion`, an elementwise node or a reduction joins the kernel of its latest operand when that kernel
    /// loops over the same space: elementwise chains become one loop, bias and activation (and their backward)
    /// run in the loop after the GEMM, and a bias gradient (`sum_batch`) is accumulated in the loop that
    /// produces its operand. Optimizer nodes only fuse with each other, so that no parameter is overwritten
    /// before the backward pass has read it. Without `fusion` every op is its own kernel.
    public static func scheduled(_ kind: ProgramKind, graph: Graph, layout: ParamLayout, fusion: Bool) -> Program {
        var p = Program(kind: kind, graph: graph, layout: layout, roots: graph.roots(for: kind))
        let live = graph.live(from: p.roots)
        // update_bn has no optimizer loop to defer the running statistics' updates into.
        let optimizerOnly = kind == .updateBN ? [] : graph.optimizerOnlyNodes()
        let users = graph.users()
        var at: [ValueID: Int] = [:]
        var reductions = Set<ValueID>()

        func joinTarget(_ v: ValueID, space: Shape) -> Int? {
            let inputs = graph[v].inputs
            // Scalars are locals of the entry point, available to every kernel, so they anchor nothing.
            guard let g = inputs.compactMap({ at[$0] }).filter({ p.kernels[$0].kind != .scalar }).max() else { return nil }
            // ... but only those computed before the kernel's call: a scalar scheduled after it is not ready there.
            guard !inputs.contains(where: { at[$0].map { p.kernels[$0].kind == .scalar && $0 > g } ?? false }) else { return nil }
            let k = p.kernels[g]
            guard k.kind == .loop || k.kind == .gemm, k.space == space,
                  optimizerOnly.contains(v) == k.nodes.contains(where: optimizerOnly.contains),
                  !inputs.contains(where: { at[$0] == g && reductions.contains($0) }) else { return nil }
            return g
        }
        func append(_ k: Kernel, _ v: ValueID) {
            p.kernels.append(k)
            at[v] = p.kernels.count - 1
        }

        var deferred: [ValueID] = []
        for v in graph.ids where live.contains(v) {
            let n = graph[v]
            if fusion, optimizerOnly.contains(v), !n.type.shape.isScalar, n.op.info.kind != .source {
                deferred.append(v)
                continue
            }
            switch n.op.info.kind {
            case .source:
                continue
            case .contraction:
                append(Kernel(kind: .gemm, anchor: v, space: n.type.shape), v)
            case .window:
                append(Kernel(kind: .window, anchor: v, space: n.type.shape), v)
            case .rowwise:
                let space = n.type.shape.isScalar ? graph.type(n.inputs[n.op == .softmaxCrossEntropyGrad ? 1 : 0]).shape : n.type.shape
                append(Kernel(kind: .rowwise, anchor: v, space: space), v)
            case .elementwise, .reduction, .effect:
                let isReduction = n.op.info.kind == .reduction
                let space = isReduction ? graph.type(n.inputs[0]).shape : n.type.shape
                if space.isScalar {
                    append(Kernel(kind: .scalar, body: [v], space: space), v)
                    continue
                }
                // A ReLU of a convolution's result that nothing else reads runs in the convolution's call.
                if fusion, n.op == .unary(.relu), let g = at[n.inputs[0]], p.kernels[g].kind == .window, p.kernels[g].body.isEmpty,
                   case .conv2d = graph[n.inputs[0]].op, users[n.inputs[0].index].filter(live.contains) == [v] {
                    p.kernels[g].body.append(v)
                    at[v] = g
                    continue
                }
                // An assign is a store directive, so it always joins the kernel that computes its value.
                if fusion || n.op.info.kind == .effect, let g = joinTarget(v, space: space) {
                    p.kernels[g].body.append(v)
                    at[v] = g
                } else {
                    append(Kernel(kind: .loop, body: [v], space: space), v)
                }
                if isReduction { reductions.insert(v) }
            }
        }
        if fusion {
            p.fuseIntoWindows()
            p.fusePoolingIntoConvolutions()
            p.sinkIntoConsumers()
            p.appendOptimizerLoops(deferred)
            p.mergeOptimizerUpdates()
            p.mergeLossWithItsGradient()
        }
        p.nameKernels()
        return p
    }

    /// Moves work into the window kernels' runtime calls, which do it in the pass they already make:
    /// - a convolution's bias gradient into its weight gradient's call (both read the same dy);
    /// - the ReLU mask applied to a max pooling's input gradient, `g_pool · step(x)` with x the pooling's input
    ///   (a ReLU's output), into the pooling's backward call: each window's gradient goes to its maximum only
    ///   when that maximum is positive. With the mask in its own loop, that loop re-reads the whole
    ///   (n, C, H, W) activation and gradient after the pooling wrote it.
    mutating func fuseIntoWindows() {
        let users = graph.users(), live = Set(kernels.flatMap(\.nodes))
        func liveUsers(_ v: ValueID) -> [ValueID] { users[v.index].filter(live.contains) }
        var removed = Set<Int>()
        for (b, kb) in kernels.enumerated() where kb.kind == .window && kb.body.isEmpty {
            guard let bias = kb.anchor, graph[bias].op == .conv2dGradBias,
                  let w = kernels.indices.first(where: { i in
                      kernels[i].kind == .window && kernels[i].body.isEmpty && kernels[i].anchor.map {
                          if case .conv2dGradWeight = graph[$0].op { return graph[$0].inputs[0] == graph[bias].inputs[0] }
                          return false } ?? false }) else { continue }
            kernels[w].body = [bias]
            removed.insert(b)
        }
        for (l, kl) in kernels.enumerated() where kl.kind == .loop && kl.body.count == 2 {
            let (s, m) = (kl.body[0], kl.body[1])
            guard graph[s].op == .unary(.step), graph[m].op == .binary(.mul), graph[m].inputs.contains(s),
                  let a = graph[m].inputs.first(where: { $0 != s }), case .maxPool2dGrad = graph[a].op,
                  graph[a].inputs[1] == graph[s].inputs[0], liveUsers(a) == [m], liveUsers(s) == [m],
                  let w = kernels.indices.first(where: { kernels[$0].anchor == a && kernels[$0].body.isEmpty }), w < l
            else { continue }
            kernels[w].body = [s, m]
            removed.insert(l)
        }
        kernels = kernels.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// Groups the optimizer's elementwise nodes into one loop per connected component of the same space (one
    /// per parameter), after everything else: the backward pass has read every parameter by then.
    mutating func appendOptimizerLoops(_ nodes: [ValueID]) {
        var parent = Dictionary(uniqueKeysWithValues: nodes.map { ($0, $0) })
        func root(_ v: ValueID) -> ValueID { var r = v; while parent[r]! != r { r = parent[r]! }; return r }
        for v in nodes {
            for x in graph[v].inputs where parent[x] != nil && graph.type(x).shape == graph.type(v).shape {
                parent[root(x)] = root(v)
            }
        }
        var groups: [ValueID: [ValueID]] = [:]
        for v in nodes { groups[root(v), default: []].append(v) }
        for body in groups.values.sorted(by: { $0.last! < $1.last! }) {
            let n = graph[body[0]]
            let space = n.op.info.kind == .reduction ? graph.type(n.inputs[0]).shape : n.type.shape
            kernels.append(Kernel(kind: .loop, body: body, space: space))
        }
    }

    /// Moves an elementwise node out of the kernel that computes it into the one later kernel that uses it, when
    /// that kernel loops over the same space and every operand is in memory anyway: `step(h)` is then computed
    /// where the backward pass needs it instead of being stored by the forward pass.
    mutating func sinkIntoConsumers() {
        var changed = true
        while changed {
            changed = false
            let at = kernelIndex(), users = graph.users(), stored = materialized()
            let live = Set(at.keys)
            for (i, k) in kernels.enumerated() where k.kind == .loop || k.kind == .gemm {
                for v in k.body where graph[v].op.info.kind == .elementwise && !roots.contains(v) {
                    let us = users[v.index].filter(live.contains)
                    guard let j = us.first.flatMap({ at[$0] }), j > i, us.allSatisfy({ at[$0] == j }),
                          kernels[j].kind == .loop || kernels[j].kind == .gemm, kernels[j].space == graph.type(v).shape,
                          !us.contains(kernels[j].anchor ?? v),   // a GEMM's operand is read before its epilogue runs
                          graph[v].inputs.allSatisfy({ x in at[x] != i || stored.subtracting([v]).contains(x) && users[x.index].contains { at[$0] != i && $0 != v } })
                    else { continue }
                    kernels[i].body.removeAll { $0 == v }
                    kernels[j].body.insert(v, at: 0)
                    changed = true
                    break
                }
                if changed { break }
            }
        }
    }

    /// Softmax cross-entropy and its gradient in one pass over the logits (what llm.c's fused classifier does):
    /// the loss kernel moves down into its gradient's kernel, which then computes each row's max, exps and sum
    /// once for both. Legal when the gradient's operands do not depend on the loss and nothing between the two
    /// kernels uses the loss but scalar statements (its division by n, penalties added to it), which move after
    /// the merged kernel. Measured in the MLP trainer (--profile, three interleaved pairs): the two kernels took
    /// 0.013–0.017 ms per step, the merged one 0.008–0.009.
    mutating func mergeLossWithItsGradient() {
        func rowwise(_ k: Kernel, _ op: Op) -> Bool { k.kind == .rowwise && k.body.isEmpty && graph[k.anchor!].op == op }
        guard let b = kernels.firstIndex(where: { rowwise($0, .softmaxCrossEntropyGrad) }) else { return }
        let grad = kernels[b].anchor!, operands = graph[grad].inputs   // (seed, logits, labels)
        guard let a = kernels[..<b].firstIndex(where: {
            rowwise($0, .softmaxCrossEntropy) && graph[$0.anchor!].inputs == Array(operands[1...])
        }) else { return }
        var dependent: Set<ValueID> = [kernels[a].anchor!], moved: [Int] = []
        for i in (a + 1)..<b where kernels[i].nodes.contains(where: { graph[$0].inputs.contains(where: dependent.contains) }) {
            guard kernels[i].kind == .scalar else { return }
            dependent.formUnion(kernels[i].nodes)
            moved.append(i)
        }
        guard !operands.contains(where: dependent.contains) else { return }
        var merged = kernels[a]
        merged.body = [grad]
        let between = ((a + 1)..<b).filter { !moved.contains($0) }.map { kernels[$0] }
        kernels = Array(kernels[..<a]) + between + [merged] + moved.map { kernels[$0] } + Array(kernels[(b + 1)...])
    }
}

extension Graph {
    /// Nodes that exist only to update parameters: they feed an `assign` but not the loss or a gradient.
    func optimizerOnlyNodes() -> Set<ValueID> {
        let effects = ids.filter { if case .assign = self[$0].op { return true } else { return false } }
        let needed = live(from: outputs.filter { $0.key != .learningRate }.map(\.value))
        return live(from: effects).subtracting(needed)
    }
}
