import NNIR

extension CEmitter {
    /// Rows and columns of a loop over `space`: (n, per-sample count) when batched, (d₀, d₁·d₂·…) for an
    /// unbatched tensor of rank 2 or more (a weight), else one flat loop.
    func extent(_ space: Shape) -> (rows: CExpr, cols: Int, twoD: Bool) {
        if space.batched { return (.id("n"), space.fixedCount, true) }
        if space.dims.count >= 2 { return (.int(space.dims[0]), space.dims.dropFirst().reduce(1, *), true) }
        return (.int(1), space.fixedCount, false)
    }

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
    /// With a split, the rows (i0..<i1) or the columns (j0..<j1) are parameters of the kernel (see `split`).
    func loopNest(_ k: Kernel, _ body: [CStmt], split: Split? = nil) -> [CStmt] {
        let (rows, cols, twoD) = extent(k.space)
        let (i0, i1): (CExpr, CExpr) = split?.axis == .rows ? (.id("i0"), .id("i1")) : (.int(0), rows)
        let (j0, j1): (CExpr, CExpr) = split?.axis == .columns ? (.id("j0"), .id("j1")) : (.int(0), .int(cols))
        var pre: [CStmt] = [], post: [CStmt] = []
        for v in k.body {
            switch graph[v].op {
            case .sumBatch: pre.append(.loop("j", j0, j1, [.assign(.index(.id(ptr(v)), .id("j")), "=", lit(0))]))
            case .sumRow: pre.append(.loop("i", i0, i1, [.assign(.index(.id(ptr(v)), .id("i")), "=", lit(0))]))
            case .sumAll:
                pre.append(.decl("double", "acc\(v.index)", .num(0, float: false)))
                post.append(.assign(.prefix("*", .id(sca(v))), "=", .id("acc\(v.index)")))
            default: break
            }
        }
        let inner: CStmt
        if twoD {
            inner = .loop("i", i0, i1, [.loop("j", j0, j1,
                [.decl("const int", "idx", .id("i") * .int(cols) + .id("j"))] + body)])
        } else {
            inner = .loop("j", j0, j1, [.decl("const int", "idx", .id("j"))] + body)
        }
        return pre + [inner] + post
    }

    /// nnrt_sgemm (cblas_dgemm in float64) for the anchor `C = op(A) @ op(B)`, writing into `target`'s buffer; with a split, only the rows
    /// i0..<i1 of C (rows of op(A)) or its columns j0..<j1 (columns of op(B)).
    func gemmCall(_ a: ValueID, target: ValueID, split: Split? = nil) -> CStmt {
        guard case .matmul(let ta, let tb) = graph[a].op else { fatalError() }
        let (A, B) = (graph[a].inputs[0], graph[a].inputs[1])
        func rc(_ v: ValueID) -> (CExpr, CExpr) {
            let s = graph.type(v).shape
            return s.batched ? (.id("n"), .int(s.dims[0])) : (.int(s.dims[0]), .int(s.dims[1]))
        }
        let (ar, ac) = rc(A), (_, bc) = rc(B), (_, cc) = rc(a)
        let m = rc(a).0, k = ta ? ar : ac
        let tr = { (t: Bool) in CExpr.id(t ? "CblasTrans" : "CblasNoTrans") }
        var (aPtr, bPtr, cPtr, rows, cols): (CExpr, CExpr, CExpr, CExpr, CExpr) = (.id(ptr(A)), .id(ptr(B)), .id(ptr(target)), m, cc)
        switch split?.axis {
        case .rows?:      // rows i0..<i1 of op(A) start i0 rows into A, or i0 elements into A when it is transposed
            aPtr = aPtr + (ta ? .id("i0") : .id("i0") * ac)
            cPtr = cPtr + .id("i0") * cc
            rows = .id("i1") - .id("i0")
        case .columns?:   // columns j0..<j1 of op(B) start j0 elements into B, or j0 rows into B when it is transposed
            bPtr = bPtr + (tb ? .id("j0") * bc : .id("j0"))
            cPtr = cPtr + .id("j0")
            cols = .id("j1") - .id("j0")
        default: break
        }
        if f64 {  // gradcheck's float64 twin
            return .expr(.call("cblas_dgemm", [
                .id("CblasRowMajor"), tr(ta), tr(tb), rows, cols, k, lit(1), aPtr, ac, bPtr, bc, lit(0), cPtr, cc,
            ]))
        }
        return .expr(.call("nnrt_sgemm", [.int(ta ? 1 : 0), .int(tb ? 1 : 0), rows, cols, k, aPtr, ac, bPtr, bc, cPtr, cc]))
    }
}
