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
    static func load() throws -> [OpCase] {
        struct File: Decodable { var cases: [OpCase] }
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
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
        #expect(cases.count == 34)
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
                case .param(let p): gradient = full.outputs["grad.\(p)"]
                default: gradient = batched.firstIndex(of: node).flatMap { adjoints[$0] }
                }
                guard let expected else {
                    #expect(t.graph.type(node).dtype == .i32, "\(what): no reference gradient for input \(i)")
                    #expect(gradient == nil, "\(what): labels got a gradient")
                    continue
                }
                guard let gradient else {
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
    static func variants(_ op: String) -> [String] { op == "cross_entropy" ? ["nll∘log_softmax", "fused"] : [""] }

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
        result = try Self.apply(c.op, operands, mean: c.attrs["reduction"] == "mean", fused: variant == "fused",
                                in: &graph)
        let outShape = graph.type(result).shape
        let upstream = outShape.batched ? try graph.addInput("upstream", outShape.dims)
                                        : try graph.addParam("upstream", outShape.dims, trainable: false)
        if outShape.batched { inputs["upstream"] = c.upstream.tensor } else { params["upstream"] = c.upstream.tensor }
        loss = try graph.add(.sumAll, [graph.add(.binary(.mul), [result, upstream])])
        graph.outputs["loss"] = loss
    }

    /// The fixture op's PyTorch semantics in IR, as the DSL lowers it.
    static func apply(_ op: String, _ x: [ValueID], mean: Bool, fused: Bool, in g: inout Graph) throws -> ValueID {
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
        default: throw TypeError("no IR form for fixture op '\(op)'")
        }
    }
}
