import Foundation
import NNCompiler
import NNIR
import Testing

/// One case of Tests/Fixtures/ops.json, written by the NumPy reference (Tests/Reference/reference.py).
struct OpCase: Decodable, Sendable, CustomTestStringConvertible {
    struct Array64: Decodable, Sendable {
        var name: String?
        var dtype: String?
        var shape: [Int]
        var data: [Double]
        var tensor: Tensor64 { Tensor64(shape: shape, data: data) }
    }
    var name: String
    var op: String
    var attrs: [String: String]
    var inputs: [Array64]
    var output: Array64
    var upstream: Array64
    /// The VJP for each input; nil for integer labels.
    var grads: [Array64?]

    var testDescription: String { name }

    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/ops.json")
    static func load(_ file: URL = url) throws -> [OpCase] {
        struct File: Decodable { var cases: [OpCase] }
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: file)).cases
    }
    /// Empty if the file cannot be read; `fixtureCoversEveryOp` then fails with the reason.
    static let all: [OpCase] = (try? load()) ?? []
}

/// Each fixture op, built as the DSL builds it in IR, evaluated by the float64 interpreter and differentiated by
/// the real VJP table. Both sides compute in float64 and differ only in summation order, so values must agree
/// to |a − e| ≤ max(1e-9·|e|, 1e-12).
@Suite struct OpReferenceTests {
    static let rel = 1e-9, abs = 1e-12

    @Test func fixtureCoversEveryOp() throws {
        let cases = try OpCase.load()
        #expect(cases.count == 59)
        for c in cases {
            for variant in OpGraph.variants(c.op) {
                #expect(throws: Never.self, "\(c.name)") { _ = try OpGraph(c, variant: variant) }
            }
        }
    }

    @Test(arguments: OpCase.all)
    func forwardAndGradientMatchNumPy(_ c: OpCase) throws {
        for variant in OpGraph.variants(c.op) {
            let what = variant.isEmpty ? c.name : "\(c.name) (\(variant))"
            let t = try OpGraph(c, variant: variant)
            try t.graph.verify()

            // The parameters' gradients come from differentiated() itself, the batched operands' from the same
            // walk pointed at the input nodes.
            var withGrads = t.graph
            if t.graph.params.contains(where: \.trainable) { withGrads = try t.graph.differentiated() }
            let batched = t.operands.filter { if case .input = t.graph[$0].op { return true } else { return false } }
            let (full, adjoints) = withGrads.differentiated(t.loss, withRespectTo: batched)
            try full.verify()

            let values = try full.evaluate(inputs: t.inputs, params: t.params)
            expectClose(values[t.result], c.output.tensor, rel: Self.rel, abs: Self.abs, "\(what) forward")
            for (i, (node, expected)) in zip(t.operands, c.grads).enumerated() {
                let gradient: ValueID?
                switch t.graph[node].op {
                case .param(let p): gradient = full.gradient(of: p)
                default: gradient = batched.firstIndex(of: node).flatMap { adjoints[$0] }
                }
                guard let expected else {
                    #expect(t.graph.type(node).dtype == .i32, "\(what): no reference gradient for input \(i)")
                    #expect(gradient == nil, "\(what): labels got a gradient")
                    continue
                }
                guard let gradient else {
                    // No VJP rule means a zero gradient (floor): the reference must say zero too.
                    if expected.data.allSatisfy({ $0 == 0 }) { continue }
                    Issue.record("\(what): autodiff gave no gradient for \(expected.name ?? "input \(i)")")
                    continue
                }
                expectClose(values[gradient], expected.tensor, rel: Self.rel, abs: Self.abs,
                            "\(what) gradient of \(expected.name ?? "input \(i)")")
            }
        }
    }
}

/// A fixture op as an IR graph: loss = sum_all(op(operands) · upstream).
///
/// The first operand, and any of the same shape, are batched activations (`input`s, leading dimension n);
/// the others (weights, biases, scalars) are trainable parameters. Labels are i32 inputs.
struct OpGraph {
    var graph = makeTestGraph("op")
    var operands: [ValueID] = []
    var result = ValueID(0)
    var loss = ValueID(0)
    var inputs: [String: Tensor64] = [:]
    var params: [String: Tensor64] = [:]

    /// The IR forms an op is checked in: cross-entropy both as nll ∘ log_softmax and as the fused op.
    static func variants(_ op: String) -> [String] {
        op == "cross_entropy" || op == "cross_entropy_ls" ? ["nll∘log_softmax", "fused"] : [""]
    }

    init(_ c: OpCase, variant: String) throws {
        for (i, a) in c.inputs.enumerated() {
            let name = a.name ?? "in\(i)"
            if a.dtype == "i32" || i == 0 || a.shape == c.inputs[0].shape {
                let dtype: DType = a.dtype == "i32" ? .i32 : .f32
                operands.append(try graph.addInput(name, Array(a.shape.dropFirst()), dtype: dtype))
                inputs[name] = a.tensor
            } else {
                operands.append(try graph.addParam(name, a.shape))
                params[name] = a.tensor
            }
        }
        result = try Self.apply(c.op, operands, attrs: c.attrs, fused: variant == "fused", in: &graph)
        let outShape = graph.type(result).shape
        let upstream = outShape.batched ? try graph.addInput("upstream", outShape.dims)
                                        : try graph.addParam("upstream", outShape.dims, trainable: false)
        if outShape.batched { inputs["upstream"] = c.upstream.tensor } else { params["upstream"] = c.upstream.tensor }
        loss = try graph.add(.sumAll, [graph.add(.binary(.mul), [result, upstream])])
        graph.outputs[.loss] = loss
    }

    /// The fixture op's PyTorch semantics in IR, as the DSL lowers it.
    static func apply(_ op: String, _ x: [ValueID], attrs: [String: String], fused: Bool,
                      in g: inout Graph) throws -> ValueID {
        let mean = attrs["reduction"] == "mean"
        func number(_ key: String, _ fallback: Double) -> Double { attrs[key].flatMap(Double.init) ?? fallback }
        /// n·k, the element count of a batched (n, k) operand, for means.
        func count(_ v: ValueID) throws -> ValueID {
            try g.add(.binary(.mul), [g.add(.batchSize, []), g.add(.constant(Double(g.type(v).shape.fixedCount)), [])])
        }
        switch op {
        case "linear":
            let y = try g.add(.matmul(transA: false, transB: true), [x[0], x[1]])
            return x.count > 2 ? try g.add(.binary(.add), [y, x[2]]) : y
        case "matmul": return try g.add(.matmul(transA: false, transB: false), [x[0], x[1]])
        case "add", "sub", "mul", "div": return try g.add(.binary(BinaryFn(rawValue: op)!), [x[0], x[1]])
        case "relu", "sigmoid", "tanh", "exp", "log", "neg", "sqrt":
            return try g.add(.unary(UnaryFn(rawValue: op)!), [x[0]])
        case "log_softmax": return try g.add(.logSoftmax, [x[0]])
        case "softmax": return try g.add(.unary(.exp), [g.add(.logSoftmax, [x[0]])])
        case "cross_entropy":
            let s = fused ? try g.add(.softmaxCrossEntropy, [x[0], x[1]])
                          : try g.add(.nll, [g.add(.logSoftmax, [x[0]]), x[1]])
            return mean ? try g.add(.binary(.div), [s, g.add(.batchSize, [])]) : s
        case "mse":
            let s = try g.add(.sumAll, [g.add(.unary(.square), [g.add(.binary(.sub), [x[0], x[1]])])])
            return mean ? try g.add(.binary(.div), [s, count(x[0])]) : s
        case "sum": return try g.add(.sumAll, [x[0]])
        case "mean": return try g.add(.binary(.div), [g.add(.sumAll, [x[0]]), count(x[0])])
        case "sum_batch": return try g.add(.sumBatch, [x[0]])
        case "cos", "sin", "floor": return try g.add(.unary(UnaryFn(rawValue: op)!), [x[0]])
        case "minimum": return try g.add(.binary(.min), [x[0], x[1]])
        case "maximum": return try g.add(.binary(.max), [x[0], x[1]])
        case "abs", "erf", "softplus": return try g.add(.unary(UnaryFn(rawValue: op)!), [x[0]])
        case "gather_label": return try g.add(.gatherLabel, [x[0], x[1]])
        default: return try applyCatalog(op, x, attrs: attrs, mean: mean, fused: fused, number: number, in: &g)
        }
    }

    /// Issue 3's activations, losses and penalties, lowered as NNDSL's `Expr` lowers them.
    static func applyCatalog(_ op: String, _ x: [ValueID], attrs: [String: String], mean: Bool, fused: Bool,
                             number: (String, Double) -> Double, in g: inout Graph) throws -> ValueID {
        func node(_ o: Op, _ xs: ValueID...) throws -> ValueID { try g.add(o, xs) }
        func c(_ v: Double) throws -> ValueID { try node(.constant(v)) }
        func u(_ f: UnaryFn, _ a: ValueID) throws -> ValueID { try node(.unary(f), a) }
        func b(_ f: BinaryFn, _ a: ValueID, _ bb: ValueID) throws -> ValueID { try node(.binary(f), a, bb) }
        func negativePart(_ a: ValueID) throws -> ValueID { try u(.neg, u(.relu, u(.neg, a))) }
        let k = Double(g.type(x[0]).shape.fixedCount)
        func reduce(_ s: ValueID, perElement: Bool) throws -> ValueID {
            guard mean else { return s }
            let n = try node(.batchSize)
            return try b(.div, s, perElement && k != 1 ? b(.mul, n, c(k)) : n)
        }
        switch op {
        case "leaky_relu":
            return try b(.add, u(.relu, x[0]), b(.mul, c(number("negative_slope", 0.01)), negativePart(x[0])))
        case "elu":
            return try b(.add, u(.relu, x[0]), b(.mul, c(number("alpha", 1)), b(.sub, u(.exp, negativePart(x[0])), c(1))))
        case "gelu":
            let inner = attrs["approximate"] == "tanh"
                ? try u(.tanh, b(.mul, c((2 / Double.pi).squareRoot()),
                                 b(.add, x[0], b(.mul, c(0.044715), b(.mul, x[0], u(.square, x[0]))))))
                : try u(.erf, b(.mul, x[0], c(1 / 2.0.squareRoot())))
            return try b(.mul, b(.mul, c(0.5), x[0]), b(.add, c(1), inner))
        case "cross_entropy_ls":
            let ce = fused ? try node(.softmaxCrossEntropy, x[0], x[1]) : try node(.nll, node(.logSoftmax, x[0]), x[1])
            let eps = g.declareHyper("label_smoothing", number("label_smoothing", 0), "")
            let gap = try node(.sumAll, b(.sub, node(.gatherLabel, x[0], x[1]), x[0]))
            return try reduce(b(.add, ce, b(.mul, b(.div, node(.hyper(eps)), c(k)), gap)), perElement: false)
        case "multi_margin":
            let m = number("margin", 1)
            let terms = try u(.relu, b(.add, b(.sub, x[0], node(.gatherLabel, x[0], x[1])), c(m)))
            var s = try b(.sub, node(.sumAll, terms), b(.mul, node(.batchSize), c(m)))
            if attrs["divide_by_classes"] != "false" { s = try b(.div, s, c(k)) }
            return try reduce(s, perElement: false)
        case "bce_with_logits":
            return try reduce(node(.sumAll, b(.sub, u(.softplus, x[0]), b(.mul, x[0], x[1]))), perElement: true)
        case "penalty":
            var terms: [ValueID] = []
            for (key, f) in [("l1", UnaryFn.abs), ("l2", .square)] {
                guard let lambda = attrs[key].flatMap(Double.init) else { continue }
                let total = try x.dropFirst().reduce(node(.sumAll, u(f, x[0]))) { try b(.add, $0, node(.sumAll, u(f, $1))) }
                terms.append(try b(.mul, c(lambda), total))
            }
            return try terms.dropFirst().reduce(terms[0]) { try b(.add, $0, $1) }
        default: throw Diagnostic.error("no IR form for fixture op '\(op)'")
        }
    }
}
