import Foundation
import NNCompiler
import NNIR
import Testing

/// One op applied to operands of given types, for a central-difference check of its VJP rule.
struct GradCheck: Sendable, CustomTestStringConvertible {
    /// Where an operand's values are drawn from, chosen to stay inside the op's domain and away from kinks.
    enum Values: Sendable {
        case any                // U(−1.5, 1.5)
        case positive           // U(0.3, 2): log, sqrt, the base of pow
        case awayFromZero       // ±U(0.3, 1.5): relu's kink, divisors
        case labels             // class indices for operand 0's k classes
        case samples            // U(0, 1), with no gradient: fractional max pooling's u
    }
    struct Operand: Sendable {
        var type: TensorType
        var values: Values
    }

    var op: Op
    var operands: [Operand]
    /// The node's own type, for `broadcast`.
    var declared: TensorType? = nil

    var testDescription: String {
        "\(op.mnemonic)\(op.attributeText) " + operands.map { "\($0.type.shape)" }.joined(separator: " ")
    }
}

extension GradCheck {
    static func batched(_ dims: Int..., values: Values = .any) -> Operand {
        Operand(type: TensorType(.f32, Shape(batched: true, dims)), values: values)
    }
    static func fixed(_ dims: Int..., values: Values = .any) -> Operand {
        Operand(type: TensorType(.f32, Shape(dims)), values: values)
    }
    static let labels = Operand(type: TensorType(.i32, Shape(batched: true, [])), values: .labels)

    /// Every op with a VJP, in every operand form the shape rules allow: all unary and binary functions on
    /// batched and fixed tensors, bias and scalar broadcasting both ways round, all four matmul transpositions
    /// (including dW = gᵀx, the contraction over the batch), the reductions and the row-wise ops.
    static let all: [GradCheck] = {
        var c: [GradCheck] = []
        for f in UnaryFn.allCases where !UnaryFn.withoutVJP.contains(f) {
            let v: Values = switch f {
            case .log, .sqrt: .positive
            case .relu, .reciprocal, .abs: .awayFromZero
            default: .any
            }
            c += [GradCheck(op: .unary(f), operands: [batched(4, values: v)]),
                  GradCheck(op: .unary(f), operands: [fixed(2, 3, values: v)])]
        }
        for f in BinaryFn.allCases {
            let (va, vb): (Values, Values) = switch f {
            case .div: (.any, .awayFromZero)
            case .pow: (.positive, .any)
            default: (.any, .any)
            }
            let forms: [(Operand, Operand)] = [
                (batched(4, values: va), batched(4, values: vb)),
                (batched(4, values: va), fixed(4, values: vb)), (fixed(4, values: va), batched(4, values: vb)),
                (batched(4, values: va), fixed(values: vb)), (fixed(values: va), batched(4, values: vb)),
                (batched(2, 3, values: va), fixed(2, 3, values: vb)),
                (fixed(2, 3, values: va), fixed(2, 3, values: vb)), (fixed(values: va), fixed(values: vb)),
                (fixed(2, 3, values: va), fixed(values: vb)), (fixed(values: va), fixed(2, 3, values: vb)),
                (batched(4, values: va), batched(values: vb)), (batched(values: va), batched(4, values: vb)),
            ]
            c += forms.map { GradCheck(op: .binary(f), operands: [$0.0, $0.1]) }
        }
        c += [GradCheck(op: .broadcast, operands: [fixed()], declared: batched(4).type),
              GradCheck(op: .broadcast, operands: [fixed(4)], declared: batched(4).type),
              GradCheck(op: .broadcast, operands: [fixed(2, 3)], declared: batched(2, 3).type),
              GradCheck(op: .broadcast, operands: [batched()], declared: batched(4).type)]
        let mm = { (ta: Bool, tb: Bool, a: Operand, b: Operand) in
            GradCheck(op: .matmul(transA: ta, transB: tb), operands: [a, b])
        }
        c += [mm(false, false, batched(5), fixed(5, 3)), mm(false, false, fixed(4, 5), fixed(5, 3)),
              mm(false, true, batched(5), fixed(3, 5)), mm(false, true, fixed(4, 5), fixed(3, 5)),
              mm(true, false, batched(4), batched(3)), mm(true, false, fixed(5, 4), fixed(5, 3)),
              mm(true, true, fixed(5, 4), fixed(3, 5))]
        c += [GradCheck(op: .concat, operands: [batched(3), batched(2)]),
              GradCheck(op: .slice(start: 1, count: 2), operands: [batched(4)]),
              GradCheck(op: .embed(start: 1, total: 5), operands: [batched(3)]),
              GradCheck(op: .groupMax(3), operands: [batched(6, values: .awayFromZero)]),
              GradCheck(op: .sumRow, operands: [batched(4)]),
              GradCheck(op: .sumBatch, operands: [batched(4)]), GradCheck(op: .sumBatch, operands: [batched(2, 3)]),
              GradCheck(op: .sumAll, operands: [batched(4)]), GradCheck(op: .sumAll, operands: [fixed(2, 3)]),
              GradCheck(op: .sumAll, operands: [fixed()]),
              GradCheck(op: .logSoftmax, operands: [batched(5)]),
              GradCheck(op: .nll, operands: [batched(5), labels]),
              GradCheck(op: .softmaxCrossEntropy, operands: [batched(5), labels]),
              GradCheck(op: .gatherLabel, operands: [batched(5), labels])]
        // Any rank: right-aligned broadcasting and its reduction, reshape, and the window ops in their options.
        c += [GradCheck(op: .binary(.add), operands: [batched(3, 4, 5), fixed(3, 1, 1)]),
              GradCheck(op: .binary(.mul), operands: [fixed(3, 1, 1), batched(3, 4, 5)]),
              GradCheck(op: .binary(.mul), operands: [batched(2, 3, 3), batched(2, 1, 1)]),
              GradCheck(op: .binary(.sub), operands: [batched(2, 3), fixed(1, 3)]),
              GradCheck(op: .broadcast, operands: [fixed(3, 1, 1)], declared: batched(3, 2, 2).type),
              GradCheck(op: .broadcast, operands: [batched(3, 1, 1)], declared: batched(3, 2, 2).type),
              GradCheck(op: .sumTo, operands: [batched(3, 4, 5)], declared: fixed(3, 1, 1).type),
              GradCheck(op: .sumTo, operands: [batched(3, 4, 5)], declared: batched(3, 1, 1).type),
              GradCheck(op: .sumTo, operands: [fixed(2, 3, 4)], declared: fixed(3, 1).type),
              GradCheck(op: .reshape, operands: [batched(2, 3, 2)], declared: batched(12).type),
              GradCheck(op: .reshape, operands: [fixed(6)], declared: fixed(3, 2, 1).type)]
        let conv = { (a: Conv2dAttrs, x: Operand, w: Operand, bias: Bool) in
            GradCheck(op: .conv2d(a), operands: [x, w] + (bias ? [fixed(w.type.shape.dims[0])] : []))
        }
        c += [conv(Conv2dAttrs(padding: [1, 1]), batched(2, 5, 5), fixed(3, 2, 3, 3), true),
              conv(Conv2dAttrs(stride: [2, 1], padding: [0, 1]), batched(2, 5, 6), fixed(3, 2, 2, 3), false),
              conv(Conv2dAttrs(dilation: [2, 2]), batched(1, 6, 6), fixed(2, 1, 2, 2), true),
              conv(Conv2dAttrs(padding: [1, 1], groups: 2), batched(4, 4, 4), fixed(6, 2, 3, 3), true),
              GradCheck(op: .conv2dGradBias, operands: [batched(3, 2, 2)]),
              GradCheck(op: .maxPool2d(Pool2dAttrs(kernel: [2, 2])), operands: [batched(2, 4, 4)]),
              GradCheck(op: .maxPool2d(Pool2dAttrs(kernel: [3, 3], stride: [2, 2], padding: [1, 1])), operands: [batched(2, 5, 5)]),
              GradCheck(op: .avgPool2d(Pool2dAttrs(kernel: [2, 2])), operands: [batched(2, 4, 4)]),
              GradCheck(op: .avgPool2d(Pool2dAttrs(kernel: [3, 2], stride: [2, 1], padding: [1, 0])), operands: [batched(2, 5, 4)]),
              GradCheck(op: .avgPool2d(Pool2dAttrs(kernel: [3, 3], stride: [2, 2], padding: [1, 1], countIncludePad: false)), operands: [batched(2, 5, 5)])]
        // Fractional max pooling given its samples: disjoint 2×2 regions, and overlapping 3×3 ones of another size per axis.
        c += [GradCheck(op: .fractionalMaxPool2d(FractionalPool2dAttrs(kernel: [2, 2], output: [5, 5])),
                        operands: [batched(2, 8, 8), batched(2, 2, values: .samples)]),
              GradCheck(op: .fractionalMaxPool2d(FractionalPool2dAttrs(kernel: [3, 3], output: [4, 3])),
                        operands: [batched(2, 9, 7), batched(2, 2, values: .samples)])]
        return c
    }()

    /// Ops that have no VJP rule on purpose: `step` (zero almost everywhere) and the backward ops, which are
    /// never differentiated again. A rule added for one of them must come with a check in `all`.
    static let withoutVJP: [GradCheck] = [
        GradCheck(op: .unary(.step), operands: [batched(4, values: .awayFromZero)]),
        GradCheck(op: .unary(.sign), operands: [batched(4, values: .awayFromZero)]),
        GradCheck(op: .gatherLabelGrad, operands: [batched(5), labels]),
        GradCheck(op: .unary(.floor), operands: [batched(4)]),
        GradCheck(op: .logSoftmaxGrad, operands: [batched(5), batched(5)]),
        GradCheck(op: .groupMaxGrad(2), operands: [batched(2), batched(4)]),
        GradCheck(op: .nllGrad, operands: [fixed(), labels, batched(5)]),
        GradCheck(op: .softmaxCrossEntropyGrad, operands: [fixed(), batched(5), labels]),
        GradCheck(op: .conv2dGradInput(Conv2dAttrs()), operands: [batched(2, 2, 2), fixed(2, 1, 2, 2)], declared: batched(1, 3, 3).type),
        GradCheck(op: .conv2dGradWeight(Conv2dAttrs()), operands: [batched(2, 2, 2), batched(1, 3, 3)], declared: fixed(2, 1, 2, 2).type),
        GradCheck(op: .maxPool2dGrad(Pool2dAttrs(kernel: [2, 2])), operands: [batched(1, 1, 1), batched(1, 2, 2)]),
        GradCheck(op: .avgPool2dGrad(Pool2dAttrs(kernel: [2, 2])), operands: [batched(1, 1, 1)], declared: batched(1, 2, 2).type),
        GradCheck(op: .fractionalMaxPool2dGrad(FractionalPool2dAttrs(kernel: [2, 2], output: [2, 2])),
                  operands: [batched(1, 2, 2), batched(1, 4, 4), batched(1, 2, values: .samples)]),
    ]

    /// Whether an op must have a gradient check. The switch has no default, so a new `Op` case does not
    /// compile until it is classified here (and listed in `everyOp`).
    static func needsCheck(_ op: Op) -> Bool {
        switch op {
        case .input, .param, .state, .hyper, .stepCount, .epochCount, .lrOverride, .stepsPerEpoch, .batchSize, .constant, .assign: return false
        // Specialized away before differentiation, and random with no differentiable operand.
        case .byMode, .dropoutMask, .uniformNoise: return false
        case .unary(let f): return !UnaryFn.withoutVJP.contains(f)
        case .binary, .broadcast, .matmul, .sumBatch, .sumAll, .sumRow, .concat, .slice, .embed, .groupMax, .logSoftmax, .nll, .softmaxCrossEntropy,
             .gatherLabel: return true
        case .logSoftmaxGrad, .nllGrad, .softmaxCrossEntropyGrad, .gatherLabelGrad, .groupMaxGrad: return false
        case .reshape, .sumTo, .conv2d, .conv2dGradBias, .maxPool2d, .avgPool2d: return true
        case .conv2dGradInput, .conv2dGradWeight, .maxPool2dGrad, .avgPool2dGrad: return false
        case .fractionalMaxPool2d: return true
        case .fractionalMaxPool2dGrad: return false
        }
    }

    /// One instance of every op: every function and every transposition.
    static let everyOp: [Op] = UnaryFn.allCases.map(Op.unary) + BinaryFn.allCases.map(Op.binary)
        + [false, true].flatMap { ta in [false, true].map { Op.matmul(transA: ta, transB: $0) } }
        + [.broadcast, .sumBatch, .sumAll, .sumRow, .concat, .slice(start: 1, count: 2), .embed(start: 1, total: 5),
           .groupMax(3), .groupMaxGrad(2), .logSoftmax, .logSoftmaxGrad, .nll, .nllGrad, .softmaxCrossEntropy,
           .softmaxCrossEntropyGrad, .gatherLabel, .gatherLabelGrad, .input("x"), .param(ParamID(0)),
           .state(StateID(.m, of: ParamID(0))), .hyper(HyperID(0)), .stepCount, .epochCount, .lrOverride, .stepsPerEpoch, .batchSize, .constant(1),
           .assign(.param(ParamID(0)))] + ModeSwitch.allCases.map(Op.byMode) + [.dropoutMask]
        + [.reshape, .sumTo, .conv2d(Conv2dAttrs(padding: [1, 1])), .conv2dGradInput(Conv2dAttrs()), .conv2dGradWeight(Conv2dAttrs()),
           .conv2dGradBias, .maxPool2d(Pool2dAttrs(kernel: [2, 2])), .maxPool2dGrad(Pool2dAttrs(kernel: [2, 2])),
           .avgPool2d(Pool2dAttrs(kernel: [2, 2])), .avgPool2dGrad(Pool2dAttrs(kernel: [2, 2]))]
        + [.uniformNoise, .fractionalMaxPool2d(FractionalPool2dAttrs(kernel: [2, 2], output: [5, 5])),
           .fractionalMaxPool2dGrad(FractionalPool2dAttrs(kernel: [2, 2], output: [2, 2]))]
}

extension UnaryFn {
    /// Step functions, zero almost everywhere: they have no VJP rule (they only appear inside other rules).
    static let withoutVJP: Set<UnaryFn> = [.step, .sign, .floor]
}

/// The problem f(operands) = sum_all(op(operands) · R) for a fixed random R, with its backward pass.
struct GradProblem {
    static let n = 3
    var graph = makeTestGraph("gradcheck")
    var sources: [ValueID] = []
    var names: [String] = []
    var loss = ValueID(0)
    var inputs: [String: Tensor64] = [:]
    var params: [String: Tensor64] = [:]

    init(_ c: GradCheck, seed: UInt64) throws {
        var rng = TestRandom(seed: seed)
        let classes = c.operands[0].type.shape.dims.last ?? 1
        var operands: [ValueID] = []
        for (j, o) in c.operands.enumerated() {
            let name = "x\(j)"
            let full = o.type.shape.full(batch: Self.n)
            let t: Tensor64 = switch o.values {
            case .any: rng.tensor(full, -1.5, 1.5)
            case .positive: rng.tensor(full, 0.3, 2)
            case .awayFromZero: Tensor64(shape: full, data: rng.tensor(full, -1, 1).data.map(Self.awayFromZero))
            case .labels: Tensor64(shape: full, data: (0..<Self.n).map { _ in Double(rng.next() % UInt64(classes)) })
            case .samples: rng.tensor(full, 0, 1)
            }
            try bind(name, o.type, t, &operands)
            if case .samples = o.values { continue }
            if o.type.dtype == .f32 { sources.append(operands[j]); names.append(name) }
        }
        let y = try graph.add(c.op, operands, declared: c.declared)
        var r: [ValueID] = []
        try bind("r", graph.type(y), rng.tensor(graph.type(y).shape.full(batch: Self.n), -1, 1), &r)
        loss = try graph.add(.sumAll, [graph.add(.binary(.mul), [y, r[0]])])
        graph.outputs[.loss] = loss
    }

    /// U(−1, 1) stretched to ±[0.3, 1.5].
    static func awayFromZero(_ u: Double) -> Double { (u < 0 ? -1 : 1) * (0.3 + 1.2 * abs(u)) }

    /// Batched operands are inputs, fixed ones parameters, as in a real model.
    private mutating func bind(_ name: String, _ type: TensorType, _ t: Tensor64, _ nodes: inout [ValueID]) throws {
        if type.shape.batched {
            nodes.append(try graph.addInput(name, type.shape.dims, dtype: type.dtype))
            inputs[name] = t
        } else {
            nodes.append(try graph.addParam(name, type.shape.dims))
            params[name] = t
        }
    }

    /// f with one source element moved by `delta`.
    func f(_ name: String, _ i: Int, _ delta: Double) throws -> Double {
        var (x, p) = (inputs, params)
        if x[name] != nil { x[name]!.data[i] += delta } else { p[name]!.data[i] += delta }
        return try graph.evaluate(inputs: x, params: p)[loss]!.scalar
    }

    func value(_ name: String) -> Tensor64 { inputs[name] ?? params[name]! }
}

/// Every VJP rule against central finite differences in float64: h = 1e-6, and each gradient element within
/// |autodiff − fd| ≤ max(1e-6·|fd|, 1e-9). The truncation error is O(h²) and the rounding error about
/// 1e-16·|f|/h ≈ 1e-10 for these problems.
@Suite struct GradientCheckTests {
    static let h = 1e-6, rel = 1e-6, abs = 1e-9

    @Test(arguments: zip(GradCheck.all, GradCheck.all.indices))
    func vjpMatchesFiniteDifferences(_ c: GradCheck, _ index: Int) throws {
        let p = try GradProblem(c, seed: UInt64(index + 1))
        let (g, adjoints) = p.graph.differentiated(p.loss, withRespectTo: p.sources)
        try g.verify()
        let values = try g.evaluate(inputs: p.inputs, params: p.params)
        for (name, adjoint) in zip(p.names, adjoints) {
            guard let adjoint else {
                Issue.record("\(c.testDescription): no gradient for \(name)")
                continue
            }
            let x = p.value(name)
            let fd = try (0..<x.count).map { i in (try p.f(name, i, Self.h) - p.f(name, i, -Self.h)) / (2 * Self.h) }
            expectClose(values[adjoint], Tensor64(shape: x.shape, data: fd), rel: Self.rel, abs: Self.abs,
                        "\(c.testDescription): gradient of \(name)")
        }
    }

    @Test func everyOpWithAVJPHasACheck() {
        let checked = Set(GradCheck.all.map(\.op))
        for op in GradCheck.everyOp where GradCheck.needsCheck(op) {
            #expect(checked.contains(op), "\(op.mnemonic)\(op.attributeText) has a VJP rule but no gradient check")
        }
        for f in UnaryFn.allCases where !UnaryFn.withoutVJP.contains(f) { #expect(checked.contains(.unary(f)), "\(f) is not checked") }
        for f in BinaryFn.allCases { #expect(checked.contains(.binary(f)), "\(f) is not checked") }
    }

    /// If one of these ops gains a VJP rule, it needs a finite-difference check too.
    @Test(arguments: GradCheck.withoutVJP)
    func opsWithoutARuleGiveNoGradient(_ c: GradCheck) throws {
        #expect(!GradCheck.needsCheck(c.op))
        let p = try GradProblem(c, seed: 99)
        let (_, adjoints) = p.graph.differentiated(p.loss, withRespectTo: p.sources)
        #expect(adjoints.allSatisfy { $0 == nil }, "\(c.testDescription) now has a VJP rule; add it to GradCheck.all")
    }

    /// The walk itself, beyond single rules: a two-layer classifier whose first weight also feeds a penalty
    /// (fan-out, so adjoints must add up) and whose input also appears as both operands of one mul, checked
    /// on every parameter (through `differentiated()`) and on x.
    @Test func compositeModelMatchesFiniteDifferences() throws {
        var g = makeTestGraph("mlp")
        let x = try g.addInput("x", [5]), y = try g.addInput("y", [], dtype: .i32)
        let (w1, b1) = (try g.addParam("W1", [4, 5]), try g.addParam("b1", [4]))
        let (w2, b2) = (try g.addParam("W2", [3, 4]), try g.addParam("b2", [3]))
        func node(_ op: Op, _ xs: ValueID...) throws -> ValueID { try g.add(op, xs) }
        func linear(_ a: ValueID, _ w: ValueID, _ b: ValueID) throws -> ValueID {
            try node(.binary(.add), node(.matmul(transA: false, transB: true), a, w), b)
        }
        let h = try node(.unary(.tanh), linear(x, w1, b1))
        let ce = try node(.binary(.div), node(.softmaxCrossEntropy, linear(h, w2, b2), y), node(.batchSize))
        let penalty = try node(.binary(.mul), node(.constant(0.1)), node(.sumAll, node(.unary(.square), w1)))
        let xx = try node(.binary(.mul), node(.constant(0.01)), node(.sumAll, node(.binary(.mul), x, x)))
        let loss = try node(.binary(.add), node(.binary(.add), ce, penalty), xx)
        g.outputs[.loss] = loss
        let (full, adjoints) = try g.differentiated().differentiated(loss, withRespectTo: [x])
        try full.verify()

        var rng = TestRandom(seed: 7)
        var bound: [String: Tensor64] = ["x": rng.tensor([3, 5], -1.5, 1.5), "y": Tensor64(shape: [3], data: [0, 2, 1])]
        var params = ["W1": rng.tensor([4, 5], -1, 1), "b1": rng.tensor([4], -1, 1),
                      "W2": rng.tensor([3, 4], -1, 1), "b2": rng.tensor([3], -1, 1)]
        let values = try full.evaluate(inputs: bound, params: params)
        func f() throws -> Double { try g.evaluate(inputs: bound, params: params)[loss]!.scalar }
        for name in ["x", "W1", "b1", "W2", "b2"] {
            let isInput = name == "x"
            let base = isInput ? bound[name]! : params[name]!
            let fd = try (0..<base.count).map { i in
                var up = base, down = base
                up.data[i] += Self.h
                down.data[i] -= Self.h
                if isInput { bound[name] = up } else { params[name] = up }
                let fUp = try f()
                if isInput { bound[name] = down } else { params[name] = down }
                let fDown = try f()
                if isInput { bound[name] = base } else { params[name] = base }
                return (fUp - fDown) / (2 * Self.h)
            }
            let adjoint = isInput ? adjoints[0] : full.paramID(named: name).flatMap(full.gradient(of:))
            expectClose(adjoint.flatMap { values[$0] }, Tensor64(shape: base.shape, data: fd), rel: Self.rel,
                        abs: Self.abs, "mlp: gradient of \(name)")
        }
    }
}
