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
        return .index(.id(ptr(x)), index(of: s, in: k))
    }

    /// The index into a buffer of shape `s` at the current element of kernel `k`'s loop: the element itself
    /// (`idx`, also for a reshape's operand, which has the same elements in the same order), the row's value
    /// (`i`), the column's (`j`, a bias), or in a loop over axes (`AxisLoops`) the sum of the axes it has.
    func index(of s: Shape, in k: Kernel) -> CExpr {
        if let axes = AxisLoops(k, self) { return axes.index(of: s) }
        if s == k.space || s.batched == k.space.batched && s.fixedCount == k.space.fixedCount { return .id("idx") }
        if s == Shape(batched: true, []), k.space.batched { return .id("i") }   // per-row value
        precondition(!s.batched && s.dims == k.space.dims, "\(s) in a loop over \(k.space)")
        return .id("j")
    }

    /// The shapes of the buffers a loop kernel reads or accumulates into besides its own space.
    func accessedShapes(_ k: Kernel) -> [Shape] {
        let inside = Set(k.nodes)
        var out: [Shape] = []
        for v in k.nodes {
            if graph[v].op.info.kind == .reduction { out.append(graph.type(v).shape) }
            for x in graph[v].inputs where !inside.contains(x) && plan.storage[x] != .local {
                let s = graph.type(x).shape
                if !s.isScalar { out.append(s) }
            }
        }
        return out
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
            case .sumBatch, .sumRow, .sumTo:
                if AxisLoops(k, self)?.hoists(n.type.shape) == true { tail.append(.assign(.id(scope.accumulators[v]!), "+=", x[0])) }
                else { tail.append(.assign(.index(.id(ptr(v)), index(of: n.type.shape, in: k)), "+=", x[0])) }
            case .sumAll: tail.append(.assign(.id(scope.accumulators[v]!), "+=", x[0]))
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
        case .broadcast, .reshape: return x[0]
        case .dropoutMask:   // keep with probability 1 − p, scaled by 1/(1 − p) (inverted dropout)
            let u = CExpr.cast(real, .call("nnrt_rng_uniform", [.id("rng")]))
            return .ternary(.binary(">=", u, x[0]), lit(1) / (lit(1) - x[0]), lit(0))
        case .uniformNoise:  // fractional max pooling's samples, one per (sample, channel, axis)
            return .cast(real, .call("nnrt_rng_uniform", [.id("rng")]))
        default: fatalError("internal compiler error: \(n.op.mnemonic) inside a loop")
        }
    }

    /// The loop nest over a kernel's space around `body`, with reduction set-up before and after.
    /// With a split, the rows (i0..<i1) or the columns (j0..<j1) are parameters of the kernel (see `split`).
    func loopNest(_ k: Kernel, _ body: [CStmt], split: Split? = nil) -> [CStmt] {
        if let axes = AxisLoops(k, self) {
            precondition(split == nil, "a loop over axes does not split")
            var pre: [CStmt] = [], post: [CStmt] = []
            for v in k.body {
                let t = graph.type(v).shape
                switch graph[v].op {
                case .sumBatch, .sumRow, .sumTo:
                    let count: CExpr = t.batched ? (t.fixedCount == 1 ? .id("n") : .id("n") * .int(t.fixedCount)) : .int(t.fixedCount)
                    pre.append(.loop("z", .int(0), count, [.assign(.index(.id(ptr(v)), .id("z")), "=", lit(0))]))
                case .sumAll:
                    pre.append(.decl("double", scope.accumulators[v]!, .num(0, float: false)))
                    post.append(.assign(.prefix("*", .id(sca(v))), "=", .id(scope.accumulators[v]!)))
                default: break
                }
            }
            let hoisted = k.body.filter { [.sumBatch, .sumRow, .sumTo].contains(graph[$0].op) && axes.hoists(graph.type($0).shape) }
            return pre + axes.nest(body, partials: hoisted.map { v in
                (name: scope.accumulators[v]!, type: real, target: .index(.id(ptr(v)), axes.index(of: graph.type(v).shape)))
            }) + post
        }
        let (rows, cols, twoD) = extent(k.space)
        let (i0, i1): (CExpr, CExpr) = split?.axis == .rows ? (.id("i0"), .id("i1")) : (.int(0), rows)
        let (j0, j1): (CExpr, CExpr) = split?.axis == .columns ? (.id("j0"), .id("j1")) : (.int(0), .int(cols))
        var pre: [CStmt] = [], post: [CStmt] = []
        for v in k.body {
            switch graph[v].op {
            case .sumBatch: pre.append(.loop("j", j0, j1, [.assign(.index(.id(ptr(v)), .id("j")), "=", lit(0))]))
            case .sumRow: pre.append(.loop("i", i0, i1, [.assign(.index(.id(ptr(v)), .id("i")), "=", lit(0))]))
            case .sumAll:
                pre.append(.decl("double", scope.accumulators[v]!, .num(0, float: false)))
                post.append(.assign(.prefix("*", .id(sca(v))), "=", .id(scope.accumulators[v]!)))
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

/// The loops of a kernel whose operands broadcast along inner axes, e.g. a bias (C,1,1) over (n,C,H,W): one loop
/// per group of adjacent axes that every buffer the kernel touches either has or lacks (axes of extent 1 left
/// out), so that each buffer's index is a sum of loop variables times its own strides. nil where the row and
/// column loops serve (each operand is the whole space, a row's value or a column's).
struct AxisLoops {
    /// Per group: its axes of `space.symbolic`, its extent (the batch's is n times the rest), and each accessed
    /// shape's mask.
    var groups: [[Int]]
    let space: Shape
    let dims: [Int?]

    init?(_ k: Kernel, _ e: CEmitter) {
        guard k.kind == .loop else { return nil }
        space = k.space
        dims = space.symbolic
        let shapes = e.accessedShapes(k)
        let sums = k.body.contains { e.graph[$0].op == .sumTo }
        let simple = shapes.allSatisfy { s in
            s == k.space || s.batched == k.space.batched && s.fixedCount == k.space.fixedCount
                || (s == Shape(batched: true, []) && k.space.batched)
                || (!s.batched && k.space.batched && s.dims == k.space.dims)
        }
        if simple && !sums { return nil }
        let masks = shapes.map { AxisLoops.mask($0, in: k.space) }
        groups = []
        var last: [Bool]? = nil
        for a in dims.indices where dims[a] != 1 {
            let column = masks.map { $0[a] }
            if column == last, !groups.isEmpty { groups[groups.count - 1].append(a) } else { groups.append([a]) }
            last = column
        }
    }

    /// Which axes of `space` a buffer of shape `s` varies along: right-aligned, as `Shape.broadcast` pairs
    /// them; a per-sample value (n) along the batch only; a reshape's operand (same elements) along all.
    static func mask(_ s: Shape, in space: Shape) -> [Bool] {
        let f = space.symbolic
        if s == Shape(batched: true, []), space.batched { return f.indices.map { $0 == 0 } }
        if (try? Shape.broadcast(s, space)) != space {
            precondition(s.batched == space.batched && s.fixedCount == space.fixedCount, "\(s) in a loop over \(space)")
            return f.map { $0 != 1 }
        }
        let t = s.symbolic, off = f.count - t.count
        return f.indices.map { a in a >= off && t[a - off] != 1 && f[a] != 1 }
    }

    func extent(_ g: Int) -> CExpr {
        let fixed = groups[g].compactMap { dims[$0] }.reduce(1, *)
        guard groups[g].contains(where: { dims[$0] == nil }) else { return .int(fixed) }
        return fixed == 1 ? .id("n") : .id("n") * .int(fixed)
    }
    func fixedExtent(_ g: Int) -> Int { groups[g].compactMap { dims[$0] }.reduce(1, *) }
    func variable(_ g: Int) -> String { "a\(g)" }

    /// Σ over the groups the buffer has of the group's variable times the extents of its later groups.
    func index(of s: Shape) -> CExpr {
        let m = AxisLoops.mask(s, in: space)
        if s == space { return .id("idx") }
        var terms: [CExpr] = []
        for g in groups.indices where m[groups[g][0]] {
            let stride = groups.indices.filter { $0 > g && m[groups[$0][0]] }.map(fixedExtent).reduce(1, *)
            terms.append(stride == 1 ? .id(variable(g)) : .id(variable(g)) * .int(stride))
        }
        return terms.isEmpty ? .int(0) : terms.dropFirst().reduce(terms[0], +)
    }

    /// Whether a reduction into a buffer of shape `s` sums along the innermost loop: it then adds into a local
    /// partial sum there (`part7`), added to the buffer after that loop, instead of a store per element.
    func hoists(_ s: Shape) -> Bool {
        guard let inner = groups.last else { return false }
        return !AxisLoops.mask(s, in: space)[inner[0]]
    }

    /// The nested loops around `body`, with `idx` the element's index in the space. Each partial sum starts at
    /// zero before the innermost loop and is added to its target after it; inside, the compiler may reorder
    /// the sum (`fp reassociate`) so that it vectorizes. The order is fixed by the binary, so runs repeat.
    func nest(_ body: [CStmt], partials: [(name: String, type: String, target: CExpr)] = []) -> [CStmt] {
        var terms: [CExpr] = []
        for g in groups.indices {
            let stride = groups.indices.filter { $0 > g }.map(fixedExtent).reduce(1, *)
            terms.append(stride == 1 ? .id(variable(g)) : .id(variable(g)) * .int(stride))
        }
        var inner: [CStmt] = [.decl("const int", "idx", terms.isEmpty ? .int(0) : terms.dropFirst().reduce(terms[0], +))] + body
        if !partials.isEmpty { inner.insert(.pragma("clang fp reassociate(on)"), at: 0) }
        for g in groups.indices.reversed() {
            inner = [.loop(variable(g), .int(0), extent(g), inner)]
            if g == groups.count - 1, !partials.isEmpty {
                inner = partials.map { .decl($0.type, $0.name, .num(0, float: $0.type == "float")) } + inner
                    + partials.map { .assign($0.target, "+=", .id($0.name)) }
            }
        }
        return inner
    }
}
