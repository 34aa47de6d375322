/// Batch normalization over features, as PyTorch's `nn.BatchNorm1d(features)`.
///
/// Training normalizes with the batch's mean and biased variance and updates the running statistics
/// (running ← (1 − momentum)·running + momentum·batch, with the unbiased variance); evaluation uses the running
/// statistics. Parameters `weight` (γ, ones) and `bias` (β, zeros); buffers `running_mean`, `running_var` and
/// `num_batches_tracked`, saved under PyTorch's names.
public final class BatchNorm: Layer {
    public let features: Int
    let eps: Double, momentum: Double, affine: Bool
    let name: String?
    let site: SourceSite
    var created: Params?

    struct Params { var weight, bias: ValueID?; var mean, variance: ValueID; var meanID, varID: ParamID; var prefix: String }

    public init(_ features: Int, eps: Double = 1e-5, momentum: Double = 0.1, affine: Bool = true, name: String? = nil,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        self.name = name
        site = NNDSL.site(file, line, column)
        if features <= 0 { fail("BatchNorm needs a positive number of features, got \(features)", at: site) }
        if !(eps > 0) { fail("BatchNorm eps must be positive, got \(eps)", at: site) }
        if !(momentum >= 0 && momentum <= 1) { fail("BatchNorm momentum must be in [0, 1], got \(momentum)", at: site) }
        self.features = features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let b = GraphBuilder.shared
        expectFeatures(x, features, layer: "BatchNorm(\(features))", site: site)
        let p = created ?? BatchNorm.makeParameters(name, features, affine, site)
        created = p
        func op(_ o: Op, _ xs: [ValueID]) -> ValueID { b.add(o, xs, site: site) }
        func c(_ v: Double) -> ValueID { op(.constant(v), []) }
        let n = op(.batchSize, [])
        // Train mode: batch statistics (biased variance for normalizing).
        let mean = b.name(op(.binary(.div), [op(.sumBatch, [x.id]), n]), "mean", p.prefix)
        let centered = b.name(op(.binary(.sub), [x.id, mean]), "xc", p.prefix)
        let variance = b.name(op(.binary(.div), [op(.sumBatch, [op(.unary(.square), [centered])]), n]), "var", p.prefix)
        let rstd = b.name(op(.unary(.reciprocal), [op(.unary(.sqrt), [op(.binary(.add), [variance, c(eps)])])]), "rstd", p.prefix)
        let trainY = b.name(op(.binary(.mul), [centered, rstd]), "xhat", p.prefix)
        // Eval mode: running statistics.
        let evalY = b.name(op(.binary(.mul), [op(.binary(.sub), [x.id, p.mean]),
                                              op(.unary(.reciprocal), [op(.unary(.sqrt), [op(.binary(.add), [p.variance, c(eps)])])])]),
                           "xhat", p.prefix)
        var y = op(.byMode(.batchStatistics), [trainY, evalY])
        if let w = p.weight, let bias = p.bias { y = op(.binary(.add), [op(.binary(.mul), [y, w]), bias]) }
        // Running statistics, updated in training only (the unbiased variance, as PyTorch).
        let keep = c(1 - momentum), m = c(momentum)
        // n/(n − 1), with max(n − 1, 1) so that a last batch of one sample cannot write an infinite variance
        // (PyTorch refuses such a batch in training; nncc trains it and keeps the running variance finite).
        let unbiased = op(.binary(.mul), [variance, op(.binary(.div), [n, op(.binary(.max), [op(.binary(.sub), [n, c(1)]), c(1)])])])
        b.add(.assign(.param(p.meanID)), [op(.binary(.add), [op(.binary(.mul), [keep, p.mean]), op(.binary(.mul), [m, mean])])], site: site)
        b.add(.assign(.param(p.varID)), [op(.binary(.add), [op(.binary(.mul), [keep, p.variance]), op(.binary(.mul), [m, unbiased])])], site: site)
        return Tensor(y)
    }

    static func makeParameters(_ name: String?, _ features: Int, _ affine: Bool, _ site: SourceSite) -> Params {
        let prefix = layerPrefix(name, kind: "batchnorm")
        let weight = affine ? declareParameter("\(prefix).weight", [features], .constant(1), site: site) : nil
        let bias = affine ? declareParameter("\(prefix).bias", [features], .zeros, site: site) : nil
        let mean = declareParameter("\(prefix).running_mean", [features], .zeros, kind: .buffer, site: site)
        let variance = declareParameter("\(prefix).running_var", [features], .constant(1), kind: .buffer, site: site)
        declareCounter("\(prefix).num_batches_tracked", site: site)
        let graph = GraphBuilder.shared.graph
        return Params(weight: weight, bias: bias, mean: mean, variance: variance,
                      meanID: graph.paramID(named: "\(prefix).running_mean")!, varID: graph.paramID(named: "\(prefix).running_var")!,
                      prefix: prefix)
    }
}

/// Inverted dropout, as `nn.Dropout(p)`: in training each element is zeroed with probability `p` and the rest
/// are scaled by 1/(1 − p); in evaluation it is the identity. The rate is a trainer flag (`--dropout`).
public final class Dropout: Layer {
    public let p: Double
    let site: SourceSite

    public init(_ p: Double = 0.5, file: String = #filePath, line: Int = #line, column: Int = #column) {
        site = NNDSL.site(file, line, column)
        checkDropProbability(p, "Dropout", at: site)
        self.p = p
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let t = GraphBuilder.shared.graph.type(x.id)
        guard t.shape.batched else { fail("Dropout expects a batched input, got \(t.shape)", at: site) }
        return dropout(x, p, mask: t, site: site)
    }
}

/// x times a mask of type `mask` (x's own type, or one value per channel for `Dropout2d`) in training, x itself
/// in evaluation.
func dropout(_ x: Tensor, _ p: Double, mask type: TensorType, rate hyper: HyperID? = nil, site: SourceSite) -> Tensor {
    let b = GraphBuilder.shared
    let rate = b.add(.hyper(hyper ?? dropoutHyper(p)), [], site: site)
    let mask = b.name(b.add(.dropoutMask, [rate], declared: type, site: site), "mask", b.scope.joined(separator: "."))
    let dropped = b.add(.binary(.mul), [x.id, mask], site: site)
    return Tensor(b.add(.byMode(.dropout), [dropped, x.id], site: site))
}

/// Stops with a diagnostic unless `p` is a drop probability in [0, 1) (a 1 would scale the kept values by 1/0).
func checkDropProbability(_ p: Double, _ layer: String, at site: SourceSite) {
    if !(p >= 0 && p < 1) { fail("\(layer) probability must be in [0, 1), got \(p)", at: site) }
}

/// The hyperparameter holding a dropout rate: "dropout" for the first rate a model uses, "dropout_2", … for
/// other rates, so that `--dropout 0.3` changes the usual single rate.
func dropoutHyper(_ p: Double, family: String = "dropout", help: String = "dropout probability (0 disables dropout)") -> HyperID {
    let g = GraphBuilder.shared
    if let h = g.graph.hypers.firstIndex(where: { $0.name.hasPrefix(family) && $0.value == p }) { return HyperID(h) }
    let count = g.graph.hypers.filter { $0.name.hasPrefix(family) }.count
    let name = count == 0 ? family : "\(family)_\(count + 1)"
    return g.graph.declareHyper(name, p, help)
}

/// Layer normalization over the features of each sample, as `nn.LayerNorm(features)`: each row is normalized by
/// its own mean and biased variance, then scaled by `weight` (γ, ones) and shifted by `bias` (β, zeros). It
/// behaves the same in training and evaluation.
public final class LayerNorm: Layer {
    public let features: Int
    let eps: Double, affine: Bool
    let name: String?
    let site: SourceSite
    var created: (weight: ValueID, bias: ValueID)??
    /// The layer's state_dict prefix, which names its values (`xhat1`).
    var prefix = ""

    public init(_ features: Int, eps: Double = 1e-5, elementwiseAffine: Bool = true, name: String? = nil,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        self.name = name
        site = NNDSL.site(file, line, column)
        if features <= 0 { fail("LayerNorm needs a positive number of features, got \(features)", at: site) }
        if !(eps > 0) { fail("LayerNorm eps must be positive, got \(eps)", at: site) }
        self.features = features
        self.eps = eps
        self.affine = elementwiseAffine
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let b = GraphBuilder.shared
        expectFeatures(x, features, layer: "LayerNorm(\(features))", site: site)
        if created == nil {
            prefix = layerPrefix(name, kind: "layernorm")
            created = affine ? (declareParameter("\(prefix).weight", [features], .constant(1), site: site),
                                declareParameter("\(prefix).bias", [features], .zeros, site: site)) : .some(nil)
        }
        func op(_ o: Op, _ xs: [ValueID]) -> ValueID { b.add(o, xs, site: site) }
        let k = op(.constant(Double(features)), [])
        let mean = b.name(op(.binary(.div), [op(.sumRow, [x.id]), k]), "mean", prefix)
        let centered = b.name(op(.binary(.sub), [x.id, mean]), "xc", prefix)
        let variance = b.name(op(.binary(.div), [op(.sumRow, [op(.unary(.square), [centered])]), k]), "var", prefix)
        let inv = b.name(op(.unary(.reciprocal), [op(.unary(.sqrt), [op(.binary(.add), [variance, op(.constant(eps), [])])])]), "rstd", prefix)
        var y = b.name(op(.binary(.mul), [centered, inv]), "xhat", prefix)
        if let (w, bias) = created! { y = op(.binary(.add), [op(.binary(.mul), [y, w]), bias]) }
        return Tensor(y)
    }
}

/// Batch normalization over the channels of images, as PyTorch's `nn.BatchNorm2d(channels)`: the statistics of
/// each channel are taken over the batch and both spatial axes (n·H·W values). Otherwise as `BatchNorm`:
/// parameters `weight`, `bias`; buffers `running_mean`, `running_var` (updated with the unbiased variance) and
/// `num_batches_tracked`.
public final class BatchNorm2d: Layer {
    public let channels: Int
    let eps: Double, momentum: Double, affine: Bool
    let name: String?
    let site: SourceSite
    var created: BatchNorm.Params?

    public init(_ channels: Int, eps: Double = 1e-5, momentum: Double = 0.1, affine: Bool = true, name: String? = nil,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        self.name = name
        site = NNDSL.site(file, line, column)
        if channels <= 0 { fail("BatchNorm2d needs a positive number of channels, got \(channels)", at: site) }
        if !(eps > 0) { fail("BatchNorm2d eps must be positive, got \(eps)", at: site) }
        if !(momentum >= 0 && momentum <= 1) { fail("BatchNorm2d momentum must be in [0, 1], got \(momentum)", at: site) }
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let b = GraphBuilder.shared
        let ch = expectImages(x, layer: "BatchNorm2d(\(channels))", site: site)
        if ch != channels { fail("BatchNorm2d(\(channels)) expects \(channels) channels, got an input \(b.graph.type(x.id).shape)", at: site) }
        let s = b.graph.type(x.id).shape
        let p = created ?? BatchNorm.makeParameters(name, channels, affine, site)
        created = p
        func op(_ o: Op, _ xs: [ValueID]) -> ValueID { b.add(o, xs, site: site) }
        func c(_ v: Double) -> ValueID { op(.constant(v), []) }
        let perChannel = TensorType(.f32, Shape([channels, 1, 1])), flat = TensorType(.f32, Shape([channels]))
        func expand(_ v: ValueID) -> ValueID { b.add(.reshape, [v], declared: perChannel, site: site) }
        func sum(_ v: ValueID) -> ValueID { b.add(.sumTo, [v], declared: perChannel, site: site) }
        let count = op(.binary(.mul), [op(.batchSize, []), c(Double(s.dims[1] * s.dims[2]))])
        let mean = b.name(op(.binary(.div), [sum(x.id), count]), "mean", p.prefix)
        let centered = b.name(op(.binary(.sub), [x.id, mean]), "xc", p.prefix)
        let variance = b.name(op(.binary(.div), [sum(op(.unary(.square), [centered])), count]), "var", p.prefix)
        let rstd = b.name(op(.unary(.reciprocal), [op(.unary(.sqrt), [op(.binary(.add), [variance, c(eps)])])]), "rstd", p.prefix)
        let trainY = b.name(op(.binary(.mul), [centered, rstd]), "xhat", p.prefix)
        let evalY = b.name(op(.binary(.mul), [op(.binary(.sub), [x.id, expand(p.mean)]),
                                              op(.unary(.reciprocal), [op(.unary(.sqrt), [op(.binary(.add), [expand(p.variance), c(eps)])])])]),
                           "xhat", p.prefix)
        var y = op(.byMode(.batchStatistics), [trainY, evalY])
        if let w = p.weight, let bias = p.bias { y = op(.binary(.add), [op(.binary(.mul), [y, expand(w)]), expand(bias)]) }
        let keep = c(1 - momentum), m = c(momentum)
        let unbiased = op(.binary(.mul), [variance, op(.binary(.div), [count, op(.binary(.max), [op(.binary(.sub), [count, c(1)]), c(1)])])])
        let flatMean = b.add(.reshape, [mean], declared: flat, site: site), flatVar = b.add(.reshape, [unbiased], declared: flat, site: site)
        b.add(.assign(.param(p.meanID)), [op(.binary(.add), [op(.binary(.mul), [keep, p.mean]), op(.binary(.mul), [m, flatMean])])], site: site)
        b.add(.assign(.param(p.varID)), [op(.binary(.add), [op(.binary(.mul), [keep, p.variance]), op(.binary(.mul), [m, flatVar])])], site: site)
        return Tensor(y)
    }
}
