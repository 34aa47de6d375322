import NNIR

/// Window kernels: each convolution and pooling op (and their backward ops) is a call into runtime/
/// (nnrt_window.h), with its geometry in a static struct. The float64 gradcheck twin calls the `_f64` versions.
extension CEmitter {
    func windowBody(_ k: Kernel, index i: Int) -> [CStmt] {
        let v = k.anchor!, n = graph[v], x = n.inputs
        let sfx = f64 ? "_f64" : ""
        func p(_ u: ValueID) -> CExpr { .id(ptr(u)) }
        let ws: [CExpr] = f64 ? [] : [.id("ws"), .int(plan.scratch[i].map { $0.bytes / plan.elementSize } ?? 0)]
        let act: CExpr = .id(k.body.contains { graph[$0].op == .unary(.relu) } ? "NNRT_ACT_RELU" : "NNRT_ACT_NONE")
        let out = writes(k, index: i).last.map(p) ?? p(v)
        switch n.op {
        case .conv2d(let a):
            let bias = x.count == 3 ? p(x[2]) : .id("NULL"), g = convGeometry(a, x: graph.type(x[0]).shape, w: graph.type(x[1]).shape)
            if let pool = k.body.last, case .maxPool2d = graph[pool].op {   // and the window bytes, when stored
                let r = graph[pool].inputs[0], at: CExpr = stored.contains(r) ? p(r) : .id("NULL")
                return [g, .expr(.call("nnrt_conv2d_forward_maxpool2" + sfx,
                                       [.prefix("&", .id("g")), .id("n"), p(x[0]), p(x[1]), bias, act, p(pool), at] + ws))]
            }
            return [g, .expr(.call("nnrt_conv2d_forward" + sfx, [.prefix("&", .id("g")), .id("n"), p(x[0]), p(x[1]), bias, act, out] + ws))]
        case .conv2dGradInput(let a):
            return [convGeometry(a, x: n.type.shape, w: graph.type(x[1]).shape),
                    .expr(.call("nnrt_conv2d_grad_input" + sfx, [.prefix("&", .id("g")), .id("n"), p(x[0]), p(x[1]), out] + ws))]
        case .conv2dGradWeight(let a):   // with the bias gradient in the same call when it is in the body
            let db = k.body.first.map(p) ?? .id("NULL")
            return [convGeometry(a, x: graph.type(x[1]).shape, w: n.type.shape),
                    .expr(.call("nnrt_conv2d_grad_weight" + sfx, [.prefix("&", .id("g")), .id("n"), p(x[0]), p(x[1]), p(v), db] + ws))]
        case .conv2dGradBias:   // Σ over n, OH, OW of each channel
            let s = graph.type(x[0]).shape, hw = s.dims[1] * s.dims[2], kk = s.dims[0]
            return [.loop("c", .int(0), .int(kk), [.assign(.index(out, .id("c")), "=", lit(0))]),
                    .loop("b", .int(0), .id("n"), [.loop("c", .int(0), .int(kk), [
                        .decl("const \(real) *", "row", p(x[0]) + (.id("b") * .int(kk) + .id("c")) * .int(hw)),
                        .decl(real, "acc", lit(0)),
                        .loop("q", .int(0), .int(hw), [.assign(.id("acc"), "+=", .index(.id("row"), .id("q")))]),
                        .assign(.index(out, .id("c")), "+=", .id("acc"))])])]
        case .maxPool2d(let a):
            return [poolGeometry(a, x: graph.type(x[0]).shape), .expr(.call("nnrt_maxpool2d_forward" + sfx, [.prefix("&", .id("g")), .id("n"), p(x[0]), out]))]
        case .maxPool2dGrad where k.body.contains(where: { Program.isConvolutionGradient(graph[$0].op) }):
            return pooledConvolutionGradients(k, dyp: p(x[0]), at: p(x[1]), ws: ws, p: p)
        case .maxPool2dGrad(let a):   // times step(x) when the ReLU mask is in the body
            let f = k.body.isEmpty ? "nnrt_maxpool2d_backward" : "nnrt_maxpool2d_backward_relu"
            return [poolGeometry(a, x: n.type.shape), .expr(.call(f + sfx, [.prefix("&", .id("g")), .id("n"), p(x[0]), p(x[1]), out]))]
        case .avgPool2d(let a):
            return [poolGeometry(a, x: graph.type(x[0]).shape), .expr(.call("nnrt_avgpool2d_forward" + sfx, [.prefix("&", .id("g")), .id("n"), p(x[0]), out]))]
        case .avgPool2dGrad(let a):
            return [poolGeometry(a, x: n.type.shape), .expr(.call("nnrt_avgpool2d_backward" + sfx, [.prefix("&", .id("g")), .id("n"), p(x[0]), out]))]
        case .fractionalMaxPool2d(let a):
            return [fractionalGeometry(a, x: graph.type(x[0]).shape),
                    .expr(.call("nnrt_fracmaxpool2d_forward" + sfx, [.prefix("&", .id("g")), .id("n"), p(x[0]), p(x[1]), out]))]
        case .fractionalMaxPool2dGrad(let a):
            return [fractionalGeometry(a, x: n.type.shape),
                    .expr(.call("nnrt_fracmaxpool2d_backward" + sfx, [.prefix("&", .id("g")), .id("n"), p(x[0]), p(x[1]), p(x[2]), out]))]
        default: fatalError("internal compiler error: \(n.op.mnemonic) is not a window op")
        }
    }

    /// A max pooling's backward with the convolution's gradients after it (Program+FusePooling.swift): their calls
    /// on the pooled gradient `dyp` and the window bytes `at`, times the ReLU's mask when it is in the body.
    func pooledConvolutionGradients(_ k: Kernel, dyp: CExpr, at: CExpr, ws: [CExpr], p: (ValueID) -> CExpr) -> [CStmt] {
        let sfx = f64 ? "_f64" : "", relu: CExpr = .int(k.body.contains { graph[$0].op == .unary(.step) } ? 1 : 0)
        let bias = k.body.first { graph[$0].op == .conv2dGradBias }.map(p) ?? .id("NULL"), g: CExpr = .prefix("&", .id("g"))
        var out: [CStmt] = []
        for v in k.body {   // both gradients are of one convolution: one geometry
            let n = graph[v]
            switch n.op {
            case .conv2dGradInput(let a):
                if out.isEmpty { out.append(convGeometry(a, x: n.type.shape, w: graph.type(n.inputs[1]).shape)) }
                out.append(.expr(.call("nnrt_conv2d_grad_input_maxpool2" + sfx, [g, .id("n"), dyp, at, relu, p(n.inputs[1]), p(v)] + ws)))
            case .conv2dGradWeight(let a):
                if out.isEmpty { out.append(convGeometry(a, x: graph.type(n.inputs[1]).shape, w: n.type.shape)) }
                out.append(.expr(.call("nnrt_conv2d_grad_weight_maxpool2" + sfx, [g, .id("n"), dyp, at, relu, p(n.inputs[1]), p(v), bias] + ws)))
            default: continue
            }
        }
        return out
    }

    /// `static const nnrt_conv2d_geom g = {C, H, W, K, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, groups};`
    func convGeometry(_ a: Conv2dAttrs, x: Shape, w: Shape) -> CStmt {
        let (c, h, wd) = (x.dims[0], x.dims[1], x.dims[2]), (k, kh, kw) = (w.dims[0], w.dims[2], w.dims[3])
        let oh = a.outputSize(h, kernel: kh, axis: 0), ow = a.outputSize(wd, kernel: kw, axis: 1)
        let fields = [c, h, wd, k, oh, ow, kh, kw] + a.stride + a.padding + a.dilation + [a.groups]
        return .decl("static const nnrt_conv2d_geom", "g", .initList(fields.map { .int($0) }))
    }

    /// `static const nnrt_fracpool2d_geom g = {C, H, W, OH, OW, kh, kw};`
    func fractionalGeometry(_ a: FractionalPool2dAttrs, x: Shape) -> CStmt {
        let fields = x.dims + a.output + a.kernel
        return .decl("static const nnrt_fracpool2d_geom", "g", .initList(fields.map { .int($0) }))
    }

    /// `static const nnrt_pool2d_geom g = {C, H, W, OH, OW, kh, kw, sh, sw, ph, pw, count_include_pad};`
    func poolGeometry(_ a: Pool2dAttrs, x: Shape) -> CStmt {
        let fields = [x.dims[0], x.dims[1], x.dims[2], a.outputSize(x.dims[1], axis: 0), a.outputSize(x.dims[2], axis: 1)]
            + a.kernel + a.stride + a.padding + [a.countIncludePad ? 1 : 0]
        return .decl("static const nnrt_pool2d_geom", "g", .initList(fields.map { .int($0) }))
    }
}

extension Program {
    /// The workspace a window kernel needs in the arena, in elements: a float32 convolution's
    /// `nnrt_conv2d_ws_floats` (nnrt_window.h; the runtime checks it); nothing for the others or in float64.
    /// With a max pooling in the same calls (Program+FusePooling.swift), `nnrt_conv2d_pool_ws_floats`.
    func scratchElements(_ k: Kernel, elementSize: Int) -> Int {
        guard k.kind == .window, elementSize == 4 else { return 0 }
        var geometry: (Conv2dAttrs, Shape, Shape)?
        for v in k.nodes where geometry == nil {   // the convolution, or its first gradient after a pooling's backward
            let n = graph[v]
            switch n.op {
            case .conv2d(let at): geometry = (at, graph.type(n.inputs[0]).shape, graph.type(n.inputs[1]).shape)
            case .conv2dGradInput(let at): geometry = (at, n.type.shape, graph.type(n.inputs[1]).shape)
            case .conv2dGradWeight(let at): geometry = (at, graph.type(n.inputs[1]).shape, n.type.shape)
            default: continue
            }
        }
        guard let (at, x, w) = geometry else { return 0 }
        let oh = at.outputSize(x.dims[1], kernel: w.dims[2], axis: 0), ow = at.outputSize(x.dims[2], kernel: w.dims[3], axis: 1)
        let cg = x.dims[0] / at.groups
        let col = cg * w.dims[2] * w.dims[3] * oh * ow, wgt = w.dims[0] * cg * w.dims[2] * w.dims[3]
        let pooled = k.nodes.contains { if case .maxPool2d = graph[$0].op { return true }; if case .maxPool2dGrad = graph[$0].op { return true }; return false }
        return 2 * (4 * col + wgt) + 64 + (pooled ? 4 * w.dims[0] * oh * ow + wgt + w.dims[0] + 64 : 0)
    }
}
