import NNIR

extension CEmitter {
    /// The C function of kernel `i` (nil for scalar kernels, which the entry point computes inline).
    func kernelFunction(_ i: Int) -> CFunction? {
        let k = program.kernels[i]
        let outs = writes(k, index: i), range = split(i)
        var params = kernelParameters(i)
        var body: [CStmt]
        switch k.kind {
        case .scalar: return nil
        case .gemm:
            let t = plan.gemmTarget[i]!
            body = [gemmCall(k.anchor!, target: t, split: range)]
            if !k.body.isEmpty { body += loopNest(k, elementBody(k, anchorFrom: t, writes: outs), split: range) }
        case .loop:
            body = loopNest(k, elementBody(k, anchorFrom: nil, writes: outs))
        case .rowwise:
            body = k.body.isEmpty ? rowwise(k.anchor!) : lossWithGradient(k)
        case .window:
            body = windowBody(k, index: i)
        case .arenaUpdate(let ps):
            body = arenaUpdate(k, first: ps[0], split: range != nil)
        }
        if let range { params += [.int(range.lo), .int(range.hi)] }
        let signature = "static void \(kernelName(i))(\(params.map(\.declaration).joined(separator: ", ")))"
        return CFunction(comment: loopComment(k) + k.nodes.map(commentLine), signature: signature, body: body)
    }

    /// The parameters of kernel `i`, without a split's range. A pointer read from a buffer that no write of the
    /// kernel overlaps is `restrict`: without it clang must assume that storing an output may change, say, the
    /// bias, and on some CPUs (AMD Zen 2) it then leaves a narrow epilogue such as the 10-wide `+ b` scalar.
    func kernelParameters(_ i: Int) -> [CParam] {
        let k = program.kernels[i]
        if case .arenaUpdate(let ps) = k.kind { return arenaParameters(k, first: ps[0]) }
        let outs = writes(k, index: i), written = outs.compactMap(region)
        let ins = reads(k).map { v -> CParam in
            var p = param(v, writes: false)
            if p.type.hasSuffix("*"), let r = region(v) { p.restrict = !written.contains { r.overlaps($0) } }
            return p
        }
        return [.int("n")] + (drawsRandom(k) ? [CParam(type: "uint64_t *", name: "rng")] : [])
            + ins + outs.map { param($0, writes: true) }
            + (plan.scratch[i] != nil ? [CParam(type: "float *", name: "ws", note: "workspace")] : [])
    }

    /// The arguments of kernel `i` at its call in the entry point, matching `kernelParameters`.
    func kernelArguments(_ i: Int) -> [CExpr] {
        let k = program.kernels[i]
        if case .arenaUpdate(let ps) = k.kind { return arenaArguments(k, first: ps[0]) }
        return [.id("n")] + (drawsRandom(k) ? [.member(.id("ctx"), "rng")] : [])
            + reads(k).map { argument($0, writes: false) } + writes(k, index: i).map { argument($0, writes: true) }
            + (plan.scratch[i].map { [.cast("float *", .id("A") + .int($0.offset))] } ?? [])
    }

    /// The call of kernel `i`; a split kernel goes through `nnrt_par_chunks` with its arguments in a struct.
    func kernelCall(_ i: Int) -> CStmt {
        let args = kernelArguments(i)
        guard let range = split(i) else { return .expr(.call(kernelName(i), args)) }
        return .block([.decl("const \(kernelName(i))_args", "a", .initList(args)),
                       .expr(.call("nnrt_par_chunks", [.id("\(kernelName(i))_chunk"), .cast("void *", .prefix("&", .id("a"))),
                                                        .int(range.count)]))])
    }

    /// How kernel `i` splits between the two threads, or nil to run it whole: only large kernels pay for the
    /// hand-off. A GEMM can split by rows of its result when every write of its epilogue stays in its row (no
    /// column sums such as a bias gradient), and by columns when every write stays in its column (no row sums).
    /// Where both are allowed, the split halves the weight: columns for a batched result (X·Wᵀ and dY·W read
    /// half of W each), rows for a weight gradient (each thread writes the rows of dW whose update it then runs,
    /// in the same core's cache). Measured in the trainer (per call, two threads): the first layer's forward
    /// GEMM 337 µs split by rows → 293 µs by columns, and the weight-gradient GEMM and the optimizer after it
    /// got faster with it (350 → 286 µs, 134 → 88 µs) because W no longer bounces between the cores' caches.
    /// No split draws random numbers: the order of draws would change. The optimizer loop splits its range of
    /// the parameter arena. Each split is in chunks (`Split.chunks`) that the two threads take from opposite
    /// ends; columns in whole tiles of the kernel that computes them (4 columns of the dot kernel, rounded to
    /// 16 floats; 64 of the broadcast kernel), rows of a weight gradient in whole 6-row tiles. Measured in
    /// the trainer, four runs each, interleaved: GEMM time per step 0.586–0.700 ms with halves, 0.550–0.589 ms
    /// with chunks. The result does not depend on which thread runs a chunk.
    func split(_ i: Int) -> Split? {
        let k = program.kernels[i]
        guard !f64, pairs[i] == nil, !pairs.values.contains(i) else { return nil }   // a paired kernel runs whole
        if case .arenaUpdate = k.kind {
            let n = k.space.fixedCount
            return n >= 1 << 16 ? Split.fixed(.elements, n, grain: 16) : nil
        }
        guard k.kind == .gemm, let a = k.anchor, case .matmul(let ta, let tb) = graph[a].op, !drawsRandom(k),
              k.space.rank == 2 else { return nil }
        let batch = graph.config.batchSize
        let rows = k.space.batched ? batch : k.space.dims[0], cols = k.space.dims.last!
        let x = graph.type(graph[a].inputs[0]).shape
        let inner = ta ? (x.batched ? batch : x.dims[0]) : x.dims.last!
        guard rows * cols * inner >= 1 << 21 else { return nil }
        let ops = k.body.map { graph[$0].op }
        let byRows: Split? = rows >= 64 && !ops.contains(where: { $0 == .sumBatch || $0 == .sumAll })
            ? (k.space.batched ? Split.batchRows : Split.fixed(.rows, rows, grain: tb ? 4 : 6))
            : nil
        let byColumns: Split? = cols >= 64 && !ops.contains(where: { $0 == .sumRow || $0 == .sumAll })
            ? Split.fixed(.columns, cols, grain: tb ? 16 : 64) : nil
        return k.space.batched ? byColumns ?? byRows : byRows ?? byColumns
    }

    /// The argument struct of split kernel `i` and the function nnrt_par_chunks calls for each chunk c.
    func splitWrapper(_ i: Int) -> [CTopLevel] {
        guard let range = split(i) else { return [] }
        let name = kernelName(i), params = kernelParameters(i)
        let call = CExpr.call(name, params.map { .member(.id("a"), $0.name) } + [.id("lo"), .id("hi")])
        let comment = "\(name): chunk c of its \(range.axis.rawValue) (nnrt_par_chunks runs them on both threads)"
        return [.structType("\(name)_args", params.map(\.field)),
                .function(CFunction(comment: [comment], signature: "static void \(name)_chunk(void *arg, int c)", body: [
                    .decl("const \(name)_args *", "a", .cast("const \(name)_args *", .id("arg"))),
                    .decl("const int", "size", range.size),
                    .decl("const int", "lo", .id("c") * .id("size")),
                    .decl("const int", "hi", .ternary(.binary("<", .id("lo") + .id("size"), range.end), .id("lo") + .id("size"), range.end)),
                    .cond(.binary("<", .id("lo"), .id("hi")), [.expr(call)]),
                ]))]
    }

    /// Kernels that move columns: concatenation, slices, and Maxout's group maximum and its gradient.
    func layoutKernel(_ v: ValueID) -> [CStmt]? {
        let n = graph[v]
        let x = n.inputs
        let width = { (u: ValueID) in self.graph.type(u).shape.dims[0] }
        let at = { (u: ValueID, col: CExpr) in CExpr.index(.id(self.ptr(u)), .id("i") * .int(width(u)) + col) }
        let j = CExpr.id("j")
        func rows(_ body: [CStmt]) -> [CStmt] { [.loop("i", .int(0), .id("n"), body)] }
        switch n.op {
        case .concat:
            let p = width(x[0])
            return rows([.loop("j", .int(0), .int(p), [.assign(at(v, j), "=", at(x[0], j))]),
                         .loop("j", .int(0), .int(width(x[1])), [.assign(at(v, .int(p) + j), "=", at(x[1], j))])])
        case .slice(let s, let c):
            return rows([.loop("j", .int(0), .int(c), [.assign(at(v, j), "=", at(x[0], .int(s) + j))])])
        case .embed(let s, let total):
            return rows([.loop("j", .int(0), .int(total), [.assign(at(v, j), "=", lit(0))]),
                         .loop("j", .int(0), .int(width(x[0])), [.assign(at(v, .int(s) + j), "=", at(x[0], j))])])
        case .groupMax(let k):
            return rows([.loop("j", .int(0), .int(width(v)), [
                .decl(real, "mx", at(x[0], j * .int(k))),
                .loop("p", .int(1), .int(k), [.cond(.binary(">", at(x[0], j * .int(k) + .id("p")), .id("mx")),
                                                    [.assign(.id("mx"), "=", at(x[0], j * .int(k) + .id("p")))])]),
                .assign(at(v, j), "=", .id("mx"))])])
        case .groupMaxGrad(let k):   // to each group's first maximum, as the reference
            return rows([.loop("j", .int(0), .int(width(x[0])), [
                .decl("int", "best", j * .int(k)),
                .loop("p", .int(1), .int(k), [.cond(.binary(">", at(x[1], j * .int(k) + .id("p")), at(x[1], .id("best"))),
                                                    [.assign(.id("best"), "=", j * .int(k) + .id("p"))])]),
                .loop("p", .int(0), .int(k), [.assign(at(v, j * .int(k) + .id("p")), "=", lit(0))]),
                .assign(at(v, .id("best")), "=", at(x[0], j))])])
        default: return nil
        }
    }

    /// Whether the kernel draws from the trainer's random generator (dropout masks, pooling samples).
    func drawsRandom(_ k: Kernel) -> Bool { k.nodes.contains { graph[$0].op.isRandom } }

    /// Row-wise kernels over logits (n, k): numerically stable log-softmax and cross-entropy.
    func rowwise(_ v: ValueID) -> [CStmt] {
        let n = graph[v]
        let x = n.inputs
        if let layout = layoutKernel(v) { return layout }
        let k = graph.type(n.op == .nllGrad ? x[2] : x[n.op == .softmaxCrossEntropyGrad ? 1 : 0]).shape.dims[0]
        let row = { (p: ValueID) in CExpr.id(self.ptr(p)) + .id("i") * .int(k) }
        func label(_ y: ValueID) -> CExpr { .index(.id(ptr(y)), .id("i")) }
        func maxAndSum(_ z: CExpr, keep: CExpr? = nil) -> [CStmt] { rowMaxAndSum(z, width: k, keep: keep) }
        let out = CExpr.id(ptr(v)) + .id("i") * .int(k)
        switch n.op {
        case .logSoftmax:
            return [.loop("i", .int(0), .id("n"), [.decl("const \(real) *", "z", row(x[0]))] + maxAndSum(.id("z")) + [
                .decl("const \(real)", "lse", .id("mx") + .call(fn("log"), [.id("sum")])),
                .loop("j", .int(0), .int(k), [.assign(.index(out, .id("j")), "=", .index(.id("z"), .id("j")) - .id("lse"))])])]
        case .logSoftmaxGrad:
            return [.loop("i", .int(0), .id("n"), [
                .decl("const \(real) *", "g", row(x[0])), .decl("const \(real) *", "lp", row(x[1])),
                .decl("\(real)", "sg", lit(0)),
                .loop("j", .int(0), .int(k), [.assign(.id("sg"), "+=", .index(.id("g"), .id("j")))]),
                .loop("j", .int(0), .int(k), [.assign(.index(out, .id("j")), "=",
                    .index(.id("g"), .id("j")) - .call(fn("exp"), [.index(.id("lp"), .id("j"))]) * .id("sg"))])])]
        case .nll:
            return [.decl("double", "acc", .num(0, float: false)),
                    .loop("i", .int(0), .id("n"), [.assign(.id("acc"), "-=", .index(row(x[0]), label(x[1])))]),
                    .assign(.prefix("*", .id(sca(v))), "=", .id("acc"))]
        case .nllGrad:
            return [.loop("i", .int(0), .id("n"), [
                .loop("j", .int(0), .int(k), [.assign(.index(out, .id("j")), "=", lit(0))]),
                .assign(.index(out, label(x[1])), "=", .cast(real, .prefix("-", .id(sca(x[0])))))])]
        case .softmaxCrossEntropy:
            return [.decl("double", "acc", .num(0, float: false)),
                    .loop("i", .int(0), .id("n"), [.decl("const \(real) *", "z", row(x[0]))] + maxAndSum(.id("z")) + [
                        // (mx − zy) first: near 0 for a confident row, where mx + log(sum) would round log(sum) to
                        // the ulp of the largest logit before zy is subtracted
                        .assign(.id("acc"), "+=", (.id("mx") - .index(.id("z"), label(x[1]))) + .call(fn("log"), [.id("sum")]))]),
                    .assign(.prefix("*", .id(sca(v))), "=", .id("acc"))]
        case .softmaxCrossEntropyGrad:
            // Each exp once: kept in the output row by the sum, then scaled (the same products as scale · exp(…)
            // computed afterwards, so the same bits, with half the exps).
            return [.loop("i", .int(0), .id("n"), [.decl("const \(real) *", "z", row(x[1]))] + maxAndSum(.id("z"), keep: out) + [
                .decl("const \(real)", "scale", .cast(real, .id(sca(x[0]))) / .id("sum")),
                .loop("j", .int(0), .int(k), [.assign(.index(out, .id("j")), "=", .id("scale") * .index(out, .id("j")))]),
                .assign(.index(out, label(x[2])), "-=", .cast(real, .id(sca(x[0]))))])]
        case .gatherLabel:
            return [.loop("i", .int(0), .id("n"), [
                .decl("const \(real)", "zy", .index(row(x[0]), label(x[1]))),
                .loop("j", .int(0), .int(k), [.assign(.index(out, .id("j")), "=", .id("zy"))])])]
        case .gatherLabelGrad:
            return [.loop("i", .int(0), .id("n"), [
                .decl("const \(real) *", "g", row(x[0])), .decl("\(real)", "sg", lit(0)),
                .loop("j", .int(0), .int(k), [.assign(.id("sg"), "+=", .index(.id("g"), .id("j"))),
                                              .assign(.index(out, .id("j")), "=", lit(0))]),
                .assign(.index(out, label(x[1])), "=", .id("sg"))])]
        default: fatalError("internal compiler error: \(n.op.mnemonic) is not row-wise")
        }
    }

    /// The statements of a row of width w: mx = max_j z[j], sum = Σ_j exp(z[j] − mx); with `keep`, each exp is
    /// also stored in keep[j].
    func rowMaxAndSum(_ z: CExpr, width w: Int, keep: CExpr? = nil) -> [CStmt] {
        let e = CExpr.call(fn("exp"), [.index(z, .id("j")) - .id("mx")])
        return [.decl("\(real)", "mx", .index(z, .int(0))),
                .loop("j", .int(1), .int(w), [.cond(.binary(">", .index(z, .id("j")), .id("mx")), [.assign(.id("mx"), "=", .index(z, .id("j")))])]),
                .decl("\(real)", "sum", lit(0)),
                .loop("j", .int(0), .int(w), keep.map { [.assign(.index($0, .id("j")), "=", e), .assign(.id("sum"), "+=", .index($0, .id("j")))] }
                                             ?? [.assign(.id("sum"), "+=", e)])]
    }

    /// The loss and its gradient in one pass (`Program.mergeLossWithItsGradient`): per row the max, the exps
    /// (kept in the gradient's row) and their sum once, then the loss term and the scaled gradient. The same
    /// statements as the two kernels apart, so the same bits. The label's logit is read before the exps are
    /// stored, in case the gradient's buffer is the logits'.
    func lossWithGradient(_ k: Kernel) -> [CStmt] {
        let loss = k.anchor!, grad = k.body[0], x = graph[grad].inputs   // (seed, logits, labels)
        let w = graph.type(x[1]).shape.dims[0]
        let z = CExpr.id("z"), out = CExpr.id(ptr(grad)) + .id("i") * .int(w), seed = CExpr.cast(real, .id(sca(x[0])))
        let label = CExpr.index(.id(ptr(x[2])), .id("i"))
        return [.decl("double", "acc", .num(0, float: false)),
                .loop("i", .int(0), .id("n"), [
                    .decl("const \(real) *", "z", .id(ptr(x[1])) + .id("i") * .int(w)),
                    .decl("const \(real)", "zy", .index(z, label))] + rowMaxAndSum(z, width: w, keep: out) + [
                    .assign(.id("acc"), "+=", (.id("mx") - .id("zy")) + .call(fn("log"), [.id("sum")])),  // as softmaxCrossEntropy
                    .decl("const \(real)", "scale", seed / .id("sum")),
                    .loop("j", .int(0), .int(w), [.assign(.index(out, .id("j")), "=", .id("scale") * .index(out, .id("j")))]),
                    .assign(.index(out, label), "-=", seed)]),
                .assign(.prefix("*", .id(sca(loss))), "=", .id("acc"))]
    }

    /// The state slots and shared scalars the optimizer update of parameter `p` reads, in first-use order.
    func arenaOperands(_ k: Kernel, first p: ParamID) -> (slots: [StateSlot], scalars: [ValueID]) {
        var slots: [StateSlot] = [], scalars: [ValueID] = []
        for v in k.body {
            for x in graph[v].inputs {
                switch program.arenaOperand(x, of: p, in: k.body)! {
                case .state(let s) where !slots.contains(s): slots.append(s)
                case .scalar(let s) where !scalars.contains(s): scalars.append(s)
                default: break
                }
            }
        }
        return (slots, scalars)
    }

    func arenaParameters(_ k: Kernel, first p: ParamID) -> [CParam] {
        let (slots, scalars) = arenaOperands(k, first: p)
        return [CParam(type: "\(real) *", name: "p"), CParam(type: "const \(real) *", name: "g")]
            + slots.map { CParam(type: "\(real) *", name: "state_\($0.rawValue)") } + scalars.map { CParam(type: "\(real) ", name: sca($0)) }
    }

    func arenaArguments(_ k: Kernel, first p: ParamID) -> [CExpr] {
        let (slots, scalars) = arenaOperands(k, first: p)
        return [buffer(.param(p)), buffer(.grad(p))] + slots.map { buffer(.state(StateID($0, of: p))) } + scalars.map { .id(sca($0)) }
    }

    /// The optimizer update as one loop over the flat arenas, written for the first parameter's offsets; with
    /// `split`, over the elements i0..<i1.
    func arenaUpdate(_ k: Kernel, first p: ParamID, split: Bool) -> [CStmt] {
        var body: [CStmt] = []
        for v in k.body {
            let n = graph[v]
            let x: [CExpr] = n.inputs.map { x in
                switch program.arenaOperand(x, of: p, in: k.body)! {
                case .param: return .index(.id("p"), .id("i"))
                case .grad: return .index(.id("g"), .id("i"))
                case .state(let s): return .index(.id("state_\(s.rawValue)"), .id("i"))
                case .scalar(let s): return .id(sca(s))
                case .local: return .id(reg(x))
                }
            }
            if case .assign(let t) = n.op {
                let dest: String
                switch t {
                case .param: dest = "p"
                case .state(let s): dest = "state_\(s.slot.rawValue)"
                }
                body.append(.assign(.index(.id(dest), .id("i")), "=", x[0]))
            } else {
                body.append(.decl("const \(real)", reg(v), elementExpr(n, x)))
            }
        }
        let (lo, hi): (CExpr, CExpr) = split ? (.id("i0"), .id("i1")) : (.int(0), .int(k.space.fixedCount))
        return [.loop("i", lo, hi, body)]
    }
}
