import Foundation
import NNCompiler
import NNIR
import Testing

/// Tests/Fixtures/cnn_ops.json, written by the NumPy reference (Tests/Reference/reference_cnn.py): each N-d op
/// built in IR as NNDSL lowers it (Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, BatchNorm2d,
/// right-aligned broadcasting), evaluated by the float64 interpreter and differentiated by the VJP table.
/// Both sides compute in float64, so values agree to |a − e| ≤ max(1e-9·|e|, 1e-12).
@Suite struct CNNOpReferenceTests {
    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/cnn_ops.json")
    static func load() throws -> [OpCase] { try OpCase.load(url) }
    static let all: [OpCase] = (try? load()) ?? []

    @Test func fixtureCoversEveryCNNOp() throws {
        let cases = try Self.load()
        #expect(cases.count == 38)
        #expect(Set(cases.map(\.op)) == ["conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "flatten",
                                         "batch_norm2d", "add_broadcast", "sum_axes", "fractional_max_pool2d",
                                         "drop_connect", "stochastic_depth"])
    }

    @Test(arguments: all)
    func forwardAndGradientMatchNumPy(_ c: OpCase) throws {
        let t = try CNNOpGraph(c)
        try t.graph.verify()
        var withGrads = t.graph
        if t.graph.params.contains(where: \.trainable) { withGrads = try t.graph.differentiated() }
        // a mask stands for a random draw, which gets no gradient
        let batched = t.operands.filter { if case .input(let name) = t.graph[$0].op { return name != "mask" } else { return false } }
        let (full, adjoints) = withGrads.differentiated(t.loss, withRespectTo: batched)
        try full.verify()
        let values = try full.evaluate(inputs: t.inputs, params: t.params)
        expectClose(values[t.result], c.output.tensor, rel: 1e-9, abs: 1e-12, "\(c.name) forward")
        for (node, expected) in zip(t.operands, c.grads) {
            let gradient: ValueID?
            switch t.graph[node].op {
            case .param(let p): gradient = full.gradient(of: p)
            default: gradient = batched.firstIndex(of: node).flatMap { adjoints[$0] }
            }
            guard let expected else {
                #expect(gradient == nil, "\(c.name): a running statistic got a gradient")
                continue
            }
            guard let gradient else { Issue.record("\(c.name): no gradient for \(expected.name ?? "?")"); continue }
            expectClose(values[gradient], expected.tensor, rel: 1e-9, abs: 1e-12, "\(c.name) gradient of \(expected.name ?? "?")")
        }
    }
}

/// A cnn_ops.json case as IR: loss = sum_all(op(operands) · upstream). `x` and `a` (and a `b` of their rank)
/// are batched inputs; weights, biases and per-channel operands are parameters; running statistics are
/// buffers.
struct CNNOpGraph {
    var graph = makeTestGraph("cnn_op")
    var operands: [ValueID] = []
    var result = ValueID(0)
    var loss = ValueID(0)
    var inputs: [String: Tensor64] = [:]
    var params: [String: Tensor64] = [:]

    init(_ c: OpCase) throws {
        let rank = c.inputs[0].shape.count
        for (i, a) in c.inputs.enumerated() {
            let name = a.name ?? "in\(i)"
            // fractional max pooling's samples and stochastic depth's mask are per sample; DropConnect's mask is
            // a fixed tensor that gets no gradient, as a buffer
            if i == 0 || (c.op == "add_broadcast" && a.shape.count == rank) || name == "u" || (c.op == "stochastic_depth" && name == "mask") {
                operands.append(try graph.addInput(name, Array(a.shape.dropFirst())))
                inputs[name] = a.tensor
            } else {
                operands.append(try graph.addParam(name, a.shape, trainable: !name.hasPrefix("running") && name != "mask"))
                params[name] = a.tensor
            }
        }
        result = try Self.apply(c.op, operands, attrs: c.attrs, in: &graph)
        let out = graph.type(result).shape
        let up = out.batched ? try graph.addInput("upstream", out.dims) : try graph.addParam("upstream", out.dims, trainable: false)
        if out.batched { inputs["upstream"] = c.upstream.tensor } else { params["upstream"] = c.upstream.tensor }
        loss = try graph.add(.sumAll, [graph.add(.binary(.mul), [result, up])])
        graph.outputs[.loss] = loss
    }

    static func pair(_ attrs: [String: String], _ key: String) -> [Int]? {
        attrs[key].map { $0.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces))! } }
    }

    static func apply(_ op: String, _ x: [ValueID], attrs: [String: String], in g: inout Graph) throws -> ValueID {
        func node(_ o: Op, _ xs: [ValueID], _ t: TensorType? = nil) throws -> ValueID { try g.add(o, xs, declared: t) }
        let s = g.type(x[0]).shape
        switch op {
        case "conv2d":
            let a = Conv2dAttrs(stride: pair(attrs, "stride")!, padding: pair(attrs, "padding")!,
                                dilation: pair(attrs, "dilation")!, groups: Int(attrs["groups"]!)!)
            return try node(.conv2d(a), x)
        case "max_pool2d", "avg_pool2d":
            let a = Pool2dAttrs(kernel: pair(attrs, "kernel")!, stride: pair(attrs, "stride"), padding: pair(attrs, "padding") ?? [0, 0],
                                countIncludePad: attrs["count_include_pad"] ?? "true" == "true")
            return try node(op == "max_pool2d" ? .maxPool2d(a) : .avgPool2d(a), x)
        case "adaptive_avg_pool2d":   // as NNDSL's AdaptiveAvgPool2d(1)
            let sum = try node(.sumTo, [x[0]], TensorType(.f32, Shape(batched: true, [s.dims[0], 1, 1])))
            return try node(.binary(.mul), [sum, node(.constant(1 / Double(s.dims[1] * s.dims[2])), [])])
        case "flatten":
            return try node(.reshape, [x[0]], TensorType(.f32, Shape(batched: true, [s.fixedCount])))
        case "add_broadcast":
            return try node(.binary(.add), x)
        case "sum_axes":
            let axes = Set(pair(attrs, "axes")!)
            let full = s.symbolic
            var kept = full.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
            let reduced = try node(.sumTo, [x[0]], TensorType(.f32, kept.first! == nil
                ? Shape(batched: true, kept.dropFirst().map { $0! }) : Shape(kept.map { $0! })))
            if attrs["keepdims"] == "true" { return reduced }
            kept = kept.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
            return try node(.reshape, [reduced], TensorType(.f32, kept.first.map { $0 == nil } ?? false
                ? Shape(batched: true, kept.dropFirst().map { $0! }) : Shape(kept.map { $0! })))
        case "batch_norm2d":
            return try batchNorm2d(x, train: attrs["mode"] == "train", eps: Double(attrs["eps"]!)!, in: &g)
        case "fractional_max_pool2d":
            return try node(.fractionalMaxPool2d(FractionalPool2dAttrs(kernel: pair(attrs, "kernel")!, output: pair(attrs, "output")!)), x)
        case "drop_connect":   // as NNDSL's DropConnect in training, with the mask given: x (W·M)ᵀ + b
            let w = try node(.binary(.mul), [x[1], x[3]])
            return try node(.binary(.add), [node(.matmul(transA: false, transB: true), [x[0], w]), x[2]])
        case "stochastic_depth":   // as NNDSL's StochasticDepth in training: a mask (n) or (n,1,1,1), given
            let m = s.dims.count == 1 ? x[1] : try node(.reshape, [x[1]], TensorType(.f32, Shape(batched: true, Array(repeating: 1, count: s.dims.count))))
            return try node(.binary(.mul), [x[0], m])
        default: throw Diagnostic.error("no IR form for fixture op '\(op)'")
        }
    }

    /// BatchNorm2d as NNDSL lowers it (the output only; the running-statistics update is checked by the
    /// trajectory test).
    static func batchNorm2d(_ x: [ValueID], train: Bool, eps: Double, in g: inout Graph) throws -> ValueID {
        let s = g.type(x[0]).shape, c = s.dims[0]
        let perChannel = TensorType(.f32, Shape([c, 1, 1]))
        func node(_ o: Op, _ xs: ValueID..., t: TensorType? = nil) throws -> ValueID { try g.add(o, xs, declared: t) }
        func const(_ v: Double) throws -> ValueID { try node(.constant(v)) }
        func invStd(_ v: ValueID) throws -> ValueID { try node(.unary(.reciprocal), node(.unary(.sqrt), node(.binary(.add), v, const(eps)))) }
        var y: ValueID
        if train {
            let count = try node(.binary(.mul), node(.batchSize), const(Double(s.dims[1] * s.dims[2])))
            let mean = try node(.binary(.div), node(.sumTo, x[0], t: perChannel), count)
            let centered = try node(.binary(.sub), x[0], mean)
            let variance = try node(.binary(.div), node(.sumTo, node(.unary(.square), centered), t: perChannel), count)
            y = try node(.binary(.mul), centered, invStd(variance))
        } else {
            y = try node(.binary(.mul), node(.binary(.sub), x[0], node(.reshape, x[3], t: perChannel)),
                         invStd(node(.reshape, x[4], t: perChannel)))
        }
        y = try node(.binary(.add), node(.binary(.mul), y, node(.reshape, x[1], t: perChannel)), node(.reshape, x[2], t: perChannel))
        return y
    }
}
