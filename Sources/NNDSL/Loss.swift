/// How a loss reduces over samples.
public enum Reduction: String, Sendable {
    case mean, sum
}

/// The training loss. Its graph is built by the DSL from the model's output and the targets.
///
/// ```swift
/// train(model, input: 784, loss: .crossEntropy(labelSmoothing: 0.1), optimizer: Adam())
/// ```
public struct Loss: Sendable {
    enum Kind: Sendable {
        case crossEntropy(labelSmoothing: Double)
        case mse
        case hinge(margin: Double, divideByClasses: Bool)
        case bceWithLogits
    }
    let kind: Kind
    let reduction: Reduction

    /// Softmax cross-entropy on logits with integer class labels, as `nn.CrossEntropyLoss`.
    public static let crossEntropy = Loss(kind: .crossEntropy(labelSmoothing: 0), reduction: .mean)
    /// Cross-entropy with PyTorch's label smoothing ε: (1−ε)·CE + ε·mean over classes of −log pⱼ, i.e. against
    /// the target distribution (1−ε)·onehot(y) + ε/k. ε is the trainer's `--label-smoothing` when it is not 0.
    public static func crossEntropy(reduction: Reduction = .mean, labelSmoothing: Double = 0,
                                    file: String = #filePath, line: Int = #line, column: Int = #column) -> Loss {
        if !(labelSmoothing >= 0 && labelSmoothing <= 1) {
            fail("crossEntropy labelSmoothing must be in [0, 1], got \(labelSmoothing)", at: site(file, line, column))
        }
        return Loss(kind: .crossEntropy(labelSmoothing: labelSmoothing), reduction: reduction)
    }
    /// Mean squared error over every element, as `nn.MSELoss`.
    public static let mse = Loss(kind: .mse, reduction: .mean)
    public static let meanSquaredError = mse
    public static func mse(reduction: Reduction) -> Loss { Loss(kind: .mse, reduction: reduction) }
    /// Multiclass SVM hinge on scores with integer labels: per sample Σ_{j≠y} max(0, s_j − s_y + margin), divided
    /// by the number of classes k as `nn.MultiMarginLoss` does (`divideByClasses: false` gives the lectures' plain
    /// sum), then reduced over samples.
    public static let hinge = Loss(kind: .hinge(margin: 1, divideByClasses: true), reduction: .mean)
    public static func hinge(margin: Double = 1, reduction: Reduction = .mean, divideByClasses: Bool = true,
                             file: String = #filePath, line: Int = #line, column: Int = #column) -> Loss {
        if !(margin >= 0 && margin.isFinite) {
            fail("hinge margin must be a finite number ≥ 0, got \(margin)", at: site(file, line, column))
        }
        return Loss(kind: .hinge(margin: margin, divideByClasses: divideByClasses), reduction: reduction)
    }
    /// Binary cross-entropy on logits z with float targets y in [0, 1], as `nn.BCEWithLogitsLoss`: per element
    /// max(z, 0) − z·y + log(1 + e^(−|z|)), reduced over every element.
    public static let binaryCrossEntropyWithLogits = Loss(kind: .bceWithLogits, reduction: .mean)
    public static func binaryCrossEntropyWithLogits(reduction: Reduction) -> Loss {
        Loss(kind: .bceWithLogits, reduction: reduction)
    }

    var target: TargetKind {
        switch kind {
        case .crossEntropy, .hinge: return .classes
        case .mse, .bceWithLogits: return .dense
        }
    }

    /// The scalar loss of `output` against the targets `y`, with the reduction.
    func build(_ output: ValueID, _ y: ValueID, site s: SourceSite) -> ValueID {
        let e = Expr(site: s)
        let k = Double(GraphBuilder.shared.graph.type(output).shape.fixedCount)
        let n = e.op(.batchSize)
        var count = n
        let summed: ValueID
        switch kind {
        case .crossEntropy(let eps):
            summed = e.op(.nll, e.op(.logSoftmax, output), y)
            guard eps > 0 else { break }
            // (1−ε)·Σᵢ −log p[i, yᵢ] + (ε/k)·Σᵢⱼ −log p[i, j] equals Σᵢ −log p[i, yᵢ] + (ε/k)·Σᵢⱼ (z[i, yᵢ] − z[i, j]),
            // because −log p[i, j] = lseᵢ − z[i, j]. The correction is linear in z, so the nll ∘ log_softmax
            // above still fuses into one softmax-cross-entropy kernel, forward and backward.
            let gap = e.sumAll(e.sub(e.op(.gatherLabel, output, y), output))
            let eps = e.hyper("label_smoothing", eps, "label smoothing ε of the cross-entropy")
            return reduced(e.add(summed, e.mul(e.div(eps, e.const(k)), gap)), count, e)
        case .mse:
            let d = e.sub(output, y)
            summed = e.sumAll(e.unary(.square, d))
            if k != 1 { count = e.mul(count, e.const(k)) }
        case .hinge(let margin, let perClass):
            // Σⱼ max(0, zⱼ − z_y + margin) over all j counts the j = y term, which is exactly relu(margin)
            // (z_y − z_y is exactly 0), and its two gradient paths cancel; so subtract it once per sample.
            let terms = e.unary(.relu, e.add(e.sub(output, e.op(.gatherLabel, output, y)), e.const(margin)))
            let all = e.sumAll(terms)
            let sum = margin > 0 ? e.sub(all, e.mul(n, e.const(margin))) : all
            summed = perClass && k != 1 ? e.div(sum, e.const(k)) : sum
        case .bceWithLogits:
            summed = e.sumAll(e.sub(e.unary(.softplus, output), e.mul(output, y)))
            if k != 1 { count = e.mul(count, e.const(k)) }
        }
        return reduced(summed, count, e)
    }

    private func reduced(_ summed: ValueID, _ count: ValueID, _ e: Expr) -> ValueID {
        reduction == .mean ? e.div(summed, count) : summed
    }
}
