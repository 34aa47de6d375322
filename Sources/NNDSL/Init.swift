import Foundation

/// How a parameter is initialised. `fanIn`/`fanOut` are the layer's input and output sizes.
public enum Init: Sendable {
    /// PyTorch's `nn.Linear` default: U(±1/√fanIn) for weights (kaiming_uniform with a = √5) and biases.
    case pytorchDefault
    case zeros
    case constant(Double)
    case uniform(Double, Double)
    case normal(mean: Double = 0, std: Double)
    /// Glorot: U(±gain·√(6/(fanIn+fanOut))).
    case xavierUniform(gain: Double = 1)
    /// Glorot: N(0, gain·√(2/(fanIn+fanOut))).
    case xavierNormal(gain: Double = 1)
    /// He: U(±gain·√(3/fanIn)) with gain √2 (ReLU), as PyTorch's kaiming_uniform_ with its defaults.
    case kaimingUniform(gain: Double = 2.0.squareRoot())
    /// He: N(0, gain/√fanIn) with gain √2 (ReLU).
    case kaimingNormal(gain: Double = 2.0.squareRoot())

    public static let xavierUniform = Init.xavierUniform()
    public static let xavierNormal = Init.xavierNormal()
    public static let kaimingUniform = Init.kaimingUniform()
    public static let kaimingNormal = Init.kaimingNormal()

    func resolve(_ fans: (fanIn: Int, fanOut: Int), isBias: Bool) -> Initializer {
        let fi = Double(fans.fanIn), fo = Double(fans.fanOut)
        switch self {
        case .pytorchDefault: let a = 1 / fi.squareRoot(); return .uniform(-a, a)
        case .zeros: return .zeros
        case .constant(let c): return .constant(c)
        case .uniform(let a, let b): return .uniform(a, b)
        case .normal(let m, let s): return .normal(mean: m, std: s)
        case .xavierUniform(let g): let a = g * (6 / (fi + fo)).squareRoot(); return .uniform(-a, a)
        case .xavierNormal(let g): return .normal(mean: 0, std: g * (2 / (fi + fo)).squareRoot())
        case .kaimingUniform(let g): let a = g * (3 / fi).squareRoot(); return .uniform(-a, a)
        case .kaimingNormal(let g): return .normal(mean: 0, std: g / fi.squareRoot())
        }
    }
}
