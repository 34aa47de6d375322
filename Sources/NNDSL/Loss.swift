/// How a loss reduces over samples.
public enum Reduction: String, Sendable {
    case mean, sum
}

/// The training loss. Its graph is built by the DSL from the model's output and the targets.
public struct Loss: Sendable {
    enum Kind: Sendable { case crossEntropy, mse }
    let kind: Kind
    let reduction: Reduction

    /// Softmax cross-entropy on logits with integer class labels, as `nn.CrossEntropyLoss`.
    public static let crossEntropy = Loss(kind: .crossEntropy, reduction: .mean)
    public static func crossEntropy(reduction: Reduction) -> Loss { Loss(kind: .crossEntropy, reduction: reduction) }
    /// Mean squared error over every element, as `nn.MSELoss`.
    public static let mse = Loss(kind: .mse, reduction: .mean)
    public static let meanSquaredError = mse
    public static func mse(reduction: Reduction) -> Loss { Loss(kind: .mse, reduction: reduction) }

    var target: TargetKind { kind == .crossEntropy ? .classes : .dense }

    /// The scalar loss of `output` against the targets `y`, with the reduction.
    func build(_ output: ValueID, _ y: ValueID, site s: SourceSite) -> ValueID {
        let b = GraphBuilder.shared
        let k = b.graph.type(output).shape.fixedCount
        let summed: ValueID
        var count = b.add(.batchSize, [], site: s)
        switch kind {
        case .crossEntropy:
            let logp = b.add(.logSoftmax, [output], site: s)
            summed = b.add(.nll, [logp, y], site: s)
        case .mse:
            let d = b.add(.binary(.sub), [output, y], site: s)
            summed = b.add(.sumAll, [b.add(.unary(.square), [d], site: s)], site: s)
            if k != 1 { count = b.add(.binary(.mul), [count, b.add(.constant(Double(k)), [], site: s)], site: s) }
        }
        guard reduction == .mean else { return summed }
        return b.add(.binary(.div), [summed, count], site: s)
    }
}
