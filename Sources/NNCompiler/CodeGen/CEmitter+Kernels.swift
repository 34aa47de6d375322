import NNIR

extension CEmitter {
    /// The C function of kernel `i` (nil for scalar kernels, which the entry point computes inline).
    func kernelFunction(_ i: Int) -> CFunction? {
        let k = program.kernels[i]
        let ins = reads(k), outs = writes(k, index: i)
        var params = ["int n"] + (drawsRandom(k) ? ["uint64_t *rng"] : [])
            + ins.map { paramDecl($0, writes: false) } + outs.map { paramDecl($0, writes: true) }
        var body: [CStmt]
        switch k.kind {
        case .scalar: return nil
        case .gemm:
            let t = plan.gemmTarget[i]!
            body = [gemmCall(k.anchor!, target: t)]
            if !k.body.isEmpty { body += loopNest(k, elementBody(k, anchorFrom: t, writes: outs)) }
        case .loop:
            body = loopNest(k, elementBody(k, anchorFrom: nil, writes: outs))
        case .rowwise:
            body = rowwise(k.anchor!)
        case .arenaUpdate(let names):
            let (ps, b) = arenaUpdate(k, first: names[0])
            params = ps
            body = b
        }
        let comment = k.nodes.map { graph.line($0).replacingOccurrences(of: "  // ", with: "  from ") }
        return CFunction(comment: comment, signature: "static void \(kernelName(k))(\(params.joined(separator: ", ")))",
                         body: body)
    }

    /// The arguments of a kernel call, matching `kernelFunction`'s parameters.
    func kernelCall(_ i: Int) -> CStmt {
        let k = program.kernels[i]
        var args: [CExpr] = [.id("n")] + (drawsRandom(k) ? [.member(.id("ctx"), "rng")] : [])
        if case .arenaUpdate(let names) = k.kind {
            args = arenaArguments(k, first: names[0])
        } else {
            args += reads(k).map { argument($0, writes: false) }
            args += writes(k, index: i).map { argument($0, writes: true) }
        }
        return .expr(.call(kernelName(k), args))
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

    /// Whether the kernel draws from the trainer's random generator (dropout masks).
    func drawsRandom(_ k: Kernel) -> Bool { k.nodes.contains { graph[$0].op == .dropoutMask } }

    /// Row-wise kernels over logits (n, k): numerically stable log-softmax and cross-entropy.
    func rowwise(_ v: ValueID) -> [CStmt] {
        let n = graph[v]
        let x = n.inputs
        if let layout = layoutKernel(v) { return layout }
        let k = graph.type(n.op == .nllGrad ? x[2] : x[n.op == .softmaxCrossEntropyGrad ? 1 : 0]).shape.dims[0]
        let row = { (p: ValueID) in CExpr.id(self.ptr(p)) + .id("i") * .int(k) }
        func label(_ y: ValueID) -> CExpr { .index(.id(ptr(y)), .id("i")) }
        func maxAndSum(_ z: CExpr) -> [CStmt] {
            [.decl("\(real)", "mx", .index(z, .int(0))),
             .loop("j", .int(1), .int(k), [.cond(.binary(">", .index(z, .id("j")), .id("mx")), [.assign(.id("mx"), "=", .index(z, .id("j")))])]),
             .decl("\(real)", "sum", lit(0)),
             .loop("j", .int(0), .int(k), [.assign(.id("sum"), "+=", .call(fn("exp"), [.index(z, .id("j")) - .id("mx")]))])]
        }
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
                        .assign(.id("acc"), "+=", .id("mx") + .call(fn("log"), [.id("sum")]) - .index(.id("z"), label(x[1])))]),
                    .assign(.prefix("*", .id(sca(v))), "=", .id("acc"))]
        case .softmaxCrossEntropyGrad:
            return [.loop("i", .int(0), .id("n"), [.decl("const \(real) *", "z", row(x[1]))] + maxAndSum(.id("z")) + [
                .decl("const \(real)", "scale", .cast(real, .id(sca(x[0]))) / .id("sum")),
                .loop("j", .int(0), .int(k), [.assign(.index(out, .id("j")), "=",
                    .id("scale") * .call(fn("exp"), [.index(.id("z"), .id("j")) - .id("mx")]))]),
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

    /// The optimizer update as one loop over the flat arenas, written for the first parameter's offsets.
    func arenaUpdate(_ k: Kernel, first p: String) -> ([String], [CStmt]) {
        var params = ["\(real) *p", "const \(real) *g"]
        var slots: [String] = [], scalars: [ValueID] = []
        var body: [CStmt] = []
        for v in k.body {
            let n = graph[v]
            let x: [CExpr] = n.inputs.map { x in
                switch program.arenaOperand(x, of: p, in: k.body)! {
                case .param: return .index(.id("p"), .id("i"))
                case .grad: return .index(.id("g"), .id("i"))
                case .state(let s):
                    if !slots.contains(s) { slots.append(s) }
                    return .index(.id("state_\(s)"), .id("i"))
                case .scalar(let s):
                    if !scalars.contains(s) { scalars.append(s) }
                    return .id(sca(s))
                case .local: return .id(reg(x))
                }
            }
            if case .assign(let t) = n.op {
                let dest = t == p ? "p" : "state_\(t.prefix { $0 != "[" })"
                body.append(.assign(.index(.id(dest), .id("i")), "=", x[0]))
            } else {
                body.append(.decl("const \(real)", reg(v), elementExpr(n, x)))
            }
        }
        params += slots.map { "\(real) *state_\($0)" } + scalars.map { "\(real) \(sca($0))" }
        return (params, [.loop("i", .int(0), .int(k.space.fixedCount), body)])
    }

    func arenaArguments(_ k: Kernel, first p: String) -> [CExpr] {
        let off = layout.offset[p]!
        var slots: [String] = [], scalars: [ValueID] = []
        for v in k.body {
            for x in graph[v].inputs {
                switch program.arenaOperand(x, of: p, in: k.body)! {
                case .state(let s) where !slots.contains(s): slots.append(s)
                case .scalar(let s) where !scalars.contains(s): scalars.append(s)
                default: break
                }
            }
        }
        let all = optimizerSlots(graph.config.optimizer)
        return [.id("P") + .int(off), .id("G") + .int(off)]
            + slots.map { .id("S") + .int(all.firstIndex(of: $0)! * layout.total + off) }
            + scalars.map { .id(sca($0)) }
    }
}
