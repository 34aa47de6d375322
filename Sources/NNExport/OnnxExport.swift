import Foundation
import NNCompiler
import NNIR
import SwiftProtobuf

/// ONNX export: the model's inference graph, exactly what the trainer's `predict` computes, as an ONNX model
/// whose weights are initializers.
///
/// The graph is the forward graph specialized to eval mode (dropout off, BatchNorm with its running statistics)
/// and simplified, as the compiler's own predict program; each IR op of the output's cone becomes one ONNX node
/// or a few. A classifier's output is followed by a Softmax, because `predict` writes probabilities.
///
/// ```swift
/// let model = try OnnxExport.model(forward, weights: SafetensorsFile(contentsOf: url))
/// try model.serializedData().write(to: out)
/// ```
public enum OnnxExport {
    /// The ONNX operator set the file imports (the default domain): 17, ONNX 1.12, which every current runtime
    /// reads. Opset-17 forms: ReduceSum takes its axes as an input, ReduceMax as an attribute.
    public static let opset: Int64 = 17
    /// The IR version that goes with opset 17.
    public static let irVersion: Int64 = 8
    /// The graph's input: the model's input "x", (batch, features…) with a symbolic batch dimension.
    public static let inputName = "x"
    /// The graph's output, (batch, k): a classifier's probabilities, or a regression's outputs.
    public static func outputName(_ target: TargetKind) -> String { target == .classes ? "probabilities" : "output" }

    public static func model(_ forward: Graph, weights: SafetensorsFile, producerVersion: String = NNCCVersion.number) throws -> Onnx_ModelProto {
        for p in forward.params { try weights.validate(p) }
        try weights.checkNoUnexpected(forward.params, model: forward.name)
        var lowering = OnnxLowering(graph: forward.specialized(for: .eval).simplified(), weights: weights)
        var m = Onnx_ModelProto()
        m.irVersion = irVersion
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = Self.opset
        m.opsetImport = [opset]
        m.producerName = "nncc"
        m.producerVersion = producerVersion
        m.docString = "\(forward.name): the inference graph of \(forward.name).swiftnn (eval mode), exported by nncc"
        m.graph = try lowering.lower()
        return m
    }
}

/// Lowers an eval-mode graph's output cone to ONNX nodes, one IR op at a time, in the graph's (topological)
/// node order.
struct OnnxLowering {
    let graph: Graph
    let weights: SafetensorsFile
    var b = OnnxGraphBuilder()
    /// The ONNX value holding each lowered IR value.
    var names: [ValueID: String] = [:]
    var paramNames: [ParamID: String] = [:]
    /// The values the output depends on, and the users of each value.
    let cone: Set<ValueID>
    let users: [[ValueID]]
    /// The IR node being lowered: the name hint of its ONNX values, and its site in model.swiftnn.
    var current: (hint: String, doc: String?) = ("", nil)

    init(graph: Graph, weights: SafetensorsFile) {
        self.graph = graph
        self.weights = weights
        cone = graph.outputs[.output].map { graph.live(from: [$0]) } ?? []
        users = graph.users()
    }

    mutating func lower() throws -> Onnx_GraphProto {
        guard let out = graph.outputs[.output] else { throw Diagnostic.error("\(graph.name): the graph has no output") }
        guard let x = graph.ids.first(where: { graph[$0].op == .input(OnnxExport.inputName) }) else {
            throw Diagnostic.error("\(graph.name): the graph has no input \"x\"")
        }
        let input = b.fresh(OnnxExport.inputName)
        b.graph.name = graph.name
        b.graph.input = [OnnxGraphBuilder.valueInfo(input, graph.type(x).shape.symbolic)]
        names[x] = try preprocessed(input, shape: graph.type(x).shape.dims)
        let logits = try value(out)
        let target = graph.config.target
        let name = OnnxExport.outputName(target)
        let result = target == .classes
            ? b.node("Softmax", [logits], [Attr.int("axis", -1)], output: name, doc: "predict: softmax over the logits")
            : b.node("Identity", [logits], output: name)
        b.graph.output = [OnnxGraphBuilder.valueInfo(result, graph.type(out).shape.symbolic)]
        return b.graph
    }

    /// The input after the weights' preprocessing (runtime/prep.c, written by `train` into the metadata), as
    /// `predict` applies it to float inputs: x / D for `--scale 1/D`, x · s for a number (nothing for `auto`, which
    /// leaves floats as they are), then (x − mean) / std per feature or per channel for `--normalize`.
    mutating func preprocessed(_ x: String, shape: [Int]) throws -> String {
        let meta = weights.metadata, path = weights.path
        var v = x
        if let scale = meta["input.scale"], scale != "auto" {
            if scale.hasPrefix("1/"), let d = Float(scale.dropFirst(2)), d > 0 {
                v = b.node("Div", [v, b.scalar(d)], output: "x_scaled", doc: "--scale \(scale)")
            } else if let m = Float(scale), m > 0 {
                v = b.node("Mul", [v, b.scalar(m)], output: "x_scaled", doc: "--scale \(scale)")
            } else {
                throw Diagnostic.error("\(path): metadata input.scale is '\(scale)', expected auto, 1/D or a positive number")
            }
        }
        let norm = meta["input.normalize"] ?? "none"
        guard norm != "none" else { return v }
        let stats = { (key: String) throws -> [Float] in
            let values = (meta[key] ?? "").split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
            let want = norm == "channel" ? (shape.first ?? 0) : shape.reduce(1, *)
            guard values.count == want, norm == "feature" || shape.count == 3 else {
                throw Diagnostic.error("\(path): metadata \(key) has \(values.count) values, expected \(want) for --normalize \(norm) of an input \(shape)")
            }
            return values
        }
        let dims = norm == "channel" ? [shape[0], 1, 1] : shape   // broadcast over the batch (and a channel's pixels)
        let mean = b.floats("input_mean", dims: dims, try stats("input.mean"))
        let std = b.floats("input_std", dims: dims, try stats("input.std"))
        let centered = b.node("Sub", [v, mean], output: "x_centered", doc: "--normalize \(norm): minus the training mean")
        return b.node("Div", [centered, std], output: "x_normalized", doc: "--normalize \(norm): over the training std")
    }

    /// The ONNX value of IR value `v`, lowered on demand (operands first): a value that a fused pattern
    /// absorbs is never asked for, unless something else uses it too.
    mutating func value(_ v: ValueID) throws -> String {
        if let name = names[v] { return name }
        let name = try lower(v)
        names[v] = name
        return name
    }

    /// Names the ONNX nodes that follow after IR node `v`, with its site in model.swiftnn (`what` describes a
    /// fused pattern).
    mutating func begin(_ v: ValueID, _ what: String? = nil) {
        let n = graph[v], label = what ?? n.op.mnemonic
        current = ("\(n.op.mnemonic)_\(v.index)", n.site.map { "\($0.short): \(label)" })
    }

    mutating func lower(_ v: ValueID) throws -> String {
        if case .fractionalMaxPool2d = graph[v].op {   // before its operands: the samples u are a random draw
            throw unsupported(v, "FractionalMaxPool2d draws its regions at random in every forward pass, and ONNX has no such operator")
        }
        if let fused = try fusedPattern(v) { return fused }
        let n = graph[v]
        let x = try n.inputs.map { try value($0) }
        begin(v)
        switch n.op {
        case .param(let p):
            if let name = paramNames[p] { return name }
            guard graph.params.indices.contains(p.index) else { throw unsupported(v, "a parameter the model does not declare") }
            let info = graph[p]
            paramNames[p] = b.floats(info.name, dims: info.shape, try weights.floats(info))
            return paramNames[p]!
        case .constant(let c): return b.scalar(Float(c))
        case .hyper(let h):   // a run-time hyperparameter in the inference graph: its default (the DSL's value)
            return b.scalar(Float(graph[h].value))
        case .batchSize:
            let count = node("Cast", [batchDimension()], [Attr.int("to", Int(Onnx_TensorProto.DataType.float.rawValue))])
            return node("Reshape", [count, b.int64s([])])
        case .unary(.square): return node("Mul", [x[0], x[0]])
        case .unary(.step):
            let positive = node("Greater", [x[0], b.scalar(0)])
            return node("Cast", [positive], [Attr.int("to", Int(Onnx_TensorProto.DataType.float.rawValue))])
        case .unary(let f):
            guard let op = Self.unaryOps[f] else { throw unsupported(v, "no ONNX operator") }
            return node(op, x)
        case .binary(let f):
            let rank = n.type.shape.rank
            return node(Self.binaryOps[f]!, [aligned(n.inputs[0], rank), aligned(n.inputs[1], rank)])
        case .broadcast:
            return node("Expand", [aligned(n.inputs[0], n.type.shape.rank), shapeTensor(n.type.shape)])
        case .matmul(let ta, let tb):
            return node("Gemm", x, [Attr.int("transA", ta ? 1 : 0), Attr.int("transB", tb ? 1 : 0)])
        case .sumBatch: return node("ReduceSum", [x[0], b.int64s([0])], [Attr.int("keepdims", 0)])
        case .sumAll: return node("ReduceSum", [x[0]], [Attr.int("keepdims", 0)])
        case .sumRow: return node("ReduceSum", [x[0], b.int64s([1])], [Attr.int("keepdims", 0)])
        case .sumTo: return sumTo(n, x[0])
        case .reshape: return node("Reshape", [x[0], b.int64s(Self.reshapeTarget(n.type.shape))])
        case .concat: return node("Concat", x, [Attr.int("axis", 1)])
        case .slice(let start, let count):
            return node("Slice", [x[0], b.int64s([start]), b.int64s([start + count]), b.int64s([1])])
        case .embed(let start, let total):
            let c = graph.type(n.inputs[0]).shape.dims[0]
            return node("Pad", [x[0], b.int64s([0, start, 0, total - start - c])])
        case .groupMax(let k):
            let m = n.type.shape.dims[0]
            let grouped = node("Reshape", [x[0], b.int64s([-1, m, k])])
            return node("ReduceMax", [grouped], [Attr.ints("axes", [2]), Attr.int("keepdims", 0)])
        case .logSoftmax: return node("LogSoftmax", x, [Attr.int("axis", -1)])
        case .conv2d(let a):
            let w = graph.type(n.inputs[1]).shape.dims
            return node("Conv", x, [Attr.ints("kernel_shape", [w[2], w[3]]), Attr.ints("strides", a.stride),
                                    Attr.ints("pads", a.padding + a.padding), Attr.ints("dilations", a.dilation),
                                    Attr.int("group", a.groups)])
        case .maxPool2d(let a):
            return node("MaxPool", x, [Attr.ints("kernel_shape", a.kernel), Attr.ints("strides", a.stride),
                                       Attr.ints("pads", a.padding + a.padding)])
        case .avgPool2d(let a):
            return node("AveragePool", x, [Attr.ints("kernel_shape", a.kernel), Attr.ints("strides", a.stride),
                                           Attr.ints("pads", a.padding + a.padding),
                                           Attr.int("count_include_pad", a.countIncludePad ? 1 : 0)])
        case .input(let name): throw unsupported(v, "the input \"\(name)\" (only \"x\" is an input at inference)")
        default: throw unsupported(v, "an op of training, not of the inference graph")
        }
    }

    /// Appends a node for the IR node being lowered.
    mutating func node(_ op: String, _ inputs: [String], _ attrs: [Onnx_AttributeProto] = []) -> String {
        b.node(op, inputs, attrs, output: current.hint, doc: current.doc)
    }

    static let unaryOps: [UnaryFn: String] = [
        .neg: "Neg", .relu: "Relu", .sigmoid: "Sigmoid", .tanh: "Tanh", .exp: "Exp", .log: "Log", .sqrt: "Sqrt",
        .reciprocal: "Reciprocal", .cos: "Cos", .sin: "Sin", .floor: "Floor", .abs: "Abs", .sign: "Sign",
        .erf: "Erf", .softplus: "Softplus",
    ]
    static let binaryOps: [BinaryFn: String] = [
        .add: "Add", .sub: "Sub", .mul: "Mul", .div: "Div", .pow: "Pow", .min: "Min", .max: "Max",
    ]

    /// The operand as ONNX's right-aligned broadcasting needs it in a result of rank `rank`: the IR repeats a
    /// per-sample value (n) along the sample's other axes (a row statistic), so it becomes (n, 1, …).
    mutating func aligned(_ v: ValueID, _ rank: Int) -> String {
        let s = graph.type(v).shape
        guard s.batched, s.dims.isEmpty, rank > 1 else { return names[v]! }
        return b.node("Unsqueeze", [names[v]!, b.int64s(Array(1..<rank))], output: "\(names[v]!)_rows")
    }

    /// The batch size n as a 1-d int64 tensor [n], read off the input's shape.
    mutating func batchDimension() -> String {
        b.node("Shape", [OnnxExport.inputName], [Attr.int("start", 0), Attr.int("end", 1)], output: "batch")
    }

    /// A shape as a 1-d int64 tensor, with the batch dimension taken from the input at run time.
    mutating func shapeTensor(_ s: Shape) -> String {
        guard s.batched else { return b.int64s(s.dims) }
        return b.node("Concat", [batchDimension(), b.int64s(s.dims)], [Attr.int("axis", 0)], output: "shape")
    }

    /// sum_to: the sum over the axes where the declared shape broadcasts (1 or absent, right-aligned), then the
    /// declared rank.
    mutating func sumTo(_ n: Node, _ x: String) -> String {
        let from = graph.type(n.inputs[0]).shape.symbolic, to = n.type.shape.symbolic
        let padded = Array(repeating: 1, count: from.count - to.count) + to
        let axes = from.indices.filter { padded[$0] == 1 && from[$0] != 1 }
        let summed = axes.isEmpty ? x : node("ReduceSum", [x, b.int64s(axes)], [Attr.int("keepdims", 1)])
        return to.count == from.count ? summed : node("Reshape", [summed, b.int64s(Self.reshapeTarget(n.type.shape))])
    }

    /// Reshape's target: the batch dimension, when there is one, as −1 (the element count decides it).
    static func reshapeTarget(_ s: Shape) -> [Int] { (s.batched ? [-1] : []) + s.dims }

    func unsupported(_ v: ValueID, _ why: String) -> Diagnostic {
        let n = graph[v]
        let at = n.site.map { " at \($0)" } ?? ""
        return Diagnostic.error("cannot export \(graph.name) to ONNX: op \(n.op.mnemonic)\(graph.attributeText(n.op))\(at) has no ONNX lowering (\(why))")
    }
}
