import Foundation

/// Small IR expressions built at one DSL site: activations, losses and penalties are written with these.
struct Expr {
    let site: SourceSite

    func op(_ o: Op, _ xs: ValueID...) -> ValueID { GraphBuilder.shared.add(o, xs, site: site) }
    func unary(_ f: UnaryFn, _ x: ValueID) -> ValueID { op(.unary(f), x) }
    func const(_ c: Double) -> ValueID { op(.constant(c)) }
    func add(_ a: ValueID, _ b: ValueID) -> ValueID { op(.binary(.add), a, b) }
    func sub(_ a: ValueID, _ b: ValueID) -> ValueID { op(.binary(.sub), a, b) }
    func mul(_ a: ValueID, _ b: ValueID) -> ValueID { op(.binary(.mul), a, b) }
    func div(_ a: ValueID, _ b: ValueID) -> ValueID { op(.binary(.div), a, b) }
    func sumAll(_ x: ValueID) -> ValueID { op(.sumAll, x) }
    /// A run-time hyperparameter `--name` with the DSL's value as its default.
    func hyper(_ name: String, _ value: Double, _ help: String) -> ValueID {
        op(.hyper(GraphBuilder.shared.graph.declareHyper(name, value, help)))
    }

    /// min(x, 0), as −relu(−x): exact, and it never feeds a large positive number to exp.
    func negativePart(_ x: ValueID) -> ValueID { unary(.neg, unary(.relu, unary(.neg, x))) }

    func leakyReLU(_ x: ValueID, _ slope: Double) -> ValueID {
        add(unary(.relu, x), mul(const(slope), negativePart(x)))
    }
    func elu(_ x: ValueID, _ alpha: Double) -> ValueID {
        add(unary(.relu, x), mul(const(alpha), sub(unary(.exp, negativePart(x)), const(1))))
    }
    func gelu(_ x: ValueID, _ approximate: GELUApproximation) -> ValueID {
        let inner: ValueID
        switch approximate {
        case .none: inner = unary(.erf, mul(x, const(1 / 2.0.squareRoot())))
        case .tanh:
            let cube = mul(x, unary(.square, x))
            inner = unary(.tanh, mul(const((2 / Double.pi).squareRoot()), add(x, mul(const(0.044715), cube))))
        }
        return mul(mul(const(0.5), x), add(const(1), inner))
    }
}

/// Which GELU: the exact x·Φ(x) with the error function, or PyTorch's `approximate='tanh'`.
public enum GELUApproximation: String, Sendable {
    case none, tanh
}

/// A fixed function of its input built from several IR ops.
public class ExprLayer: Layer {
    let site: SourceSite
    let build: (Expr, ValueID) -> ValueID

    init(_ site: SourceSite, _ build: @escaping (Expr, ValueID) -> ValueID) {
        self.site = site
        self.build = build
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { Tensor(build(Expr(site: site), x.id)) }
}

func finite(_ name: String, _ v: Double, at s: SourceSite) {
    if !v.isFinite { fail("\(name) must be a finite number, got \(v)", at: s) }
}

/// max(0, x) + negativeSlope·min(0, x), as `nn.LeakyReLU` (default slope 0.01).
public final class LeakyReLU: ExprLayer {
    public init(negativeSlope: Double = 0.01, file: String = #filePath, line: Int = #line, column: Int = #column) {
        let s = NNDSL.site(file, line, column)
        finite("LeakyReLU negativeSlope", negativeSlope, at: s)
        super.init(s) { e, x in e.leakyReLU(x, negativeSlope) }
    }
}

/// x for x > 0, alpha·(eˣ − 1) otherwise, as `nn.ELU` (default alpha 1).
public final class ELU: ExprLayer {
    public init(alpha: Double = 1, file: String = #filePath, line: Int = #line, column: Int = #column) {
        let s = NNDSL.site(file, line, column)
        finite("ELU alpha", alpha, at: s)
        super.init(s) { e, x in e.elu(x, alpha) }
    }
}

/// x·Φ(x) = ½x(1 + erf(x/√2)), or with `approximate: .tanh` ½x(1 + tanh(√(2/π)(x + 0.044715x³))), as `nn.GELU`.
public final class GELU: ExprLayer {
    public init(approximate: GELUApproximation = .none,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        super.init(NNDSL.site(file, line, column)) { e, x in e.gelu(x, approximate) }
    }
}

/// e^(xᵢ) / Σⱼ e^(xⱼ) over the last dimension, as `nn.Softmax(dim=-1)`.
public final class Softmax: ExprLayer {
    public init(file: String = #filePath, line: Int = #line, column: Int = #column) {
        super.init(NNDSL.site(file, line, column)) { e, x in e.unary(.exp, e.op(.logSoftmax, x)) }
    }
}

/// xᵢ − log Σⱼ e^(xⱼ) over the last dimension, as `nn.LogSoftmax(dim=-1)`.
public final class LogSoftmax: FunctionLayer {
    public init(file: String = #filePath, line: Int = #line, column: Int = #column) {
        super.init(.logSoftmax, NNDSL.site(file, line, column))
    }
}

// Functional forms.

public func leakyReLU(_ x: Tensor, negativeSlope: Double = 0.01,
                      file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    LeakyReLU(negativeSlope: negativeSlope, file: file, line: line, column: column)(x)
}
public func elu(_ x: Tensor, alpha: Double = 1,
                file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    ELU(alpha: alpha, file: file, line: line, column: column)(x)
}
public func gelu(_ x: Tensor, approximate: GELUApproximation = .none,
                 file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    GELU(approximate: approximate, file: file, line: line, column: column)(x)
}
public func softmax(_ x: Tensor, file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    Softmax(file: file, line: line, column: column)(x)
}
public func logSoftmax(_ x: Tensor, file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    apply(.logSoftmax, [x], site: site(file, line, column))
}
public func abs(_ x: Tensor, file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    apply(.unary(.abs), [x], site: site(file, line, column))
}
public func erf(_ x: Tensor, file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    apply(.unary(.erf), [x], site: site(file, line, column))
}
/// log(1 + eˣ), computed without overflow.
public func softplus(_ x: Tensor, file: String = #filePath, line: Int = #line, column: Int = #column) -> Tensor {
    apply(.unary(.softplus), [x], site: site(file, line, column))
}
