import NNIR

extension CEmitter {
    /// Rows and columns of a loop over `space`: (n, per-sample count) when batched, else (1, count).
    func extent(_ space: Shape) -> (rows: CExpr?, cols: Int) { (space.batched ? .id("n") : nil, space.fixedCount) }

    /// The value of operand `x` at the current element of a loop over `space`.
    func load(_ x: ValueID, in k: Kernel) -> CExpr {
        if k.nodes.contains(x) { return .id(reg(x)) }
        if plan.storage[x] == .local { return .id(sca(x)) }
        let s = graph.type(x).shape
        if s.isScalar { return .id(sca(x)) }
        if s == k.space { return .index(.id(ptr(x)), .id("idx")) }
        if s == Shape(batched: true, []), k.space.batched { return .index(.id(ptr(x)), .id("i")) }   // per-row value
        precondition(!s.batched && s.dims == k.space.dims, "operand \(x) \(s) in a loop over \(k.space)")
        return .index(.id(ptr(x)), .id("j"))
    }

    /// The statements that compute one element: a register per body node, then the stores and accumulations.
    func elementBody(_ k: Kernel, anchorFrom target: ValueID?, writes: [ValueID]) -> [CStmt] {
        var out: [CStmt] = []
        if let a = k.anchor, let t = target {
            out.append(.decl("const \(real)", reg(a), .index(.id(ptr(t)), .id("idx"))))
        }
        var tail: [CStmt] = []
        for v in k.body {
            let n = graph[v]
            let x = n.inputs.map { load($0, in: k) }
            switch n.op {
            case .sumBatch: tail.append(.assign(.index(.id(ptr(v)), .id("j")), "+=", x[0]))
            case .sumAll: tail.append(.assign(.id("acc\(v.index)"), "+=", x[0]))
            case .sumRow: tail.append(.assign(.index(.id(ptr(v)), .id("i")), "+=", x[0]))
            case .assign:
                tail.append(.assign(.index(.id(ptr(v)), .id("idx")), "=", x[0]))
            default:
                out.append(.decl("const \(real)", reg(v), elementExpr(n, x)))
                if writes.contains(v) { tail.append(.assign(.index(.id(ptr(v)), .id("idx")), "=", .id(reg(v)))) }
            }
        }
        return out + tail
    }

    func elementExpr(_ n: Node, _ x: [CExpr]) -> CExpr {
        switch n.op {
        case .unary(let f): return unaryExpr(f, x[0])
        case .binary(let f): return binaryExpr(f, x[0], x[1])
        case .broadcast: return x[0]
        case .dropoutMask:   // keep with probability 1 − p, scaled by 1/(1 − p) (inverted dropout)
            let u = CExpr.cast(real, .call("nnrt_rng_uniform", [.id("rng")]))
            return .ternary(.binary(">=", u, x[0]), lit(1) / (lit(1) - x[0]), lit(0))
        default: fatalError("internal compiler error: \(n.op.mnemonic) inside a loop")
        }
    }

    /// The loop nest over a kernel's space around `body`, with reduction set-up before and after.
    /// With `split`, the columns run from j0 to j1, parameters of the kernel (see `columnSplit`).
    func loopNest(_ k: Kernel, _ body: [CStmt], split: Bool = false) -> [CStmt] {
        let (rows, cols) = extent(k.space)
        let (j0, j1): (CExpr, CExpr) = split ? (.id("j0"), .id("j1")) : (.int(0), .int(cols))
        var pre: [CStmt] = [], post: [CStmt] = []
        for v in k.body {
            switch graph[v].op {
            case .sumBatch: pre.append(.loop("j", j0, j1, [.assign(.index(.id(ptr(v)), .id("j")), "=", lit(0))]))
            case .sumRow: pre.append(.loop("i", .int(0), .id("n"), [.assign(.index(.id(ptr(v)), .id("i")), "=", lit(0))]))
            case .sumAll:
                pre.append(.decl("double", "acc\(v.index)", .num(0, float: false)))
                post.append(.assign(.prefix("*", .id(sca(v))), "=", .id("acc\(v.index)")))
            default: break
            }
        }
        let inner: CStmt
        if let rows {
            inner = .loop("i", .int(0), rows, [.loop("j", j0, j1,
                [.decl("const int", "idx", .id("i") * .int(cols) + .id("j"))] + body)])
        } else {
            inner = .loop("j", j0, j1, [.decl("const int", "idx", .id("j"))] + body)
        }
        return pre + [inner] + post
    }

    /// cblas_?gemm for the anchor `C = op(A) @ op(B)`, writing into `target`'s buffer; with `split`, only the
    /// columns j0..<j1 of C (columns of op(B)).
    func gemmCall(_ a: ValueID, target: ValueID, split: Bool = false) -> CStmt {
        guard case .matmul(let ta, let tb) = graph[a].op else { fatalError() }
        let (A, B) = (graph[a].inputs[0], graph[a].inputs[1])
        func rc(_ v: ValueID) -> (CExpr, CExpr) {
            let s = graph.type(v).shape
            return s.batched ? (.id("n"), .int(s.dims[0])) : (.int(s.dims[0]), .int(s.dims[1]))
        }
        let (ar, ac) = rc(A), (_, bc) = rc(B), (_, cc) = rc(a)
        let m = rc(a).0, k = ta ? ar : ac
        let tr = { (t: Bool) in CExpr.id(t ? "CblasTrans" : "CblasNoTrans") }
        // Columns j0..<j1 of op(B) start j0 elements into B, or j0 rows into B when it is transposed.
        let b: CExpr = split ? .id(ptr(B)) + (tb ? .id("j0") * bc : .id("j0")) : .id(ptr(B))
        let c: CExpr = split ? .id(ptr(target)) + .id("j0") : .id(ptr(target))
        let cols: CExpr = split ? .id("j1") - .id("j0") : cc
        return .expr(.call(f64 ? "cblas_dgemm" : "cblas_sgemm", [
            .id("CblasRowMajor"), tr(ta), tr(tb), m, cols, k, lit(1), .id(ptr(A)), ac, b, bc, lit(0), c, cc,
        ]))
    }
}
