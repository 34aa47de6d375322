/// y = x Wᵀ + b, with W of shape (out, in) as in PyTorch's `nn.Linear`.
///
/// Initialization defaults to PyTorch's: W and b uniform in ±1/√in. Choose another with
/// `Linear(784, 256, weightInit: .kaimingNormal(), biasInit: .zeros)`.
public final class Linear: Layer {
    public let inFeatures: Int
    public let outFeatures: Int
    public let bias: Bool
    let weightInit: Init
    let biasInit: Init
    let name: String?
    let site: SourceSite
    /// The parameter values once the layer has been applied, so a second application shares them.
    var created: (weight: ValueID, bias: ValueID?)?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, weightInit: Init = .pytorchDefault,
                biasInit: Init = .pytorchDefault, name: String? = nil,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        self.site = NNDSL.site(file, line, column)
        if inFeatures <= 0 || outFeatures <= 0 {
            fail("Linear needs positive sizes, got Linear(\(inFeatures), \(outFeatures))", at: site)
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.bias = bias
        self.weightInit = weightInit
        self.biasInit = biasInit
        self.name = name
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { apply(x) { $0 } }

    /// x Wᵀ + b with W replaced by `weight(W)` (DropConnect's masked weight).
    func apply(_ x: Tensor, weight: (ValueID) -> ValueID) -> Tensor {
        let b = GraphBuilder.shared
        expectFeatures(x, inFeatures, layer: "Linear(\(inFeatures), \(outFeatures))", site: site)
        let (w, bv) = created ?? makeParameters()
        created = (w, bv)
        var y = b.add(.matmul(transA: false, transB: true), [x.id, weight(w)], site: site)
        if let bv { y = b.add(.binary(.add), [y, bv], site: site) }
        return Tensor(y)
    }

    private func makeParameters() -> (ValueID, ValueID?) {
        let prefix = layerPrefix(name, kind: "linear")
        let fans = (fanIn: inFeatures, fanOut: outFeatures)
        let w = declareParameter("\(prefix).weight", [outFeatures, inFeatures], weightInit.resolve(fans, isBias: false), site: site)
        let bv = bias ? declareParameter("\(prefix).bias", [outFeatures], biasInit.resolve(fans, isBias: true), site: site) : nil
        return (w, bv)
    }
}

/// Maxout (Goodfellow et al. 2013): `pieces` affine maps per output, and their maximum. It is a Linear layer of
/// `out·pieces` features (parameters `weight` (out·pieces, in) and `bias`, each output's pieces consecutive)
/// followed by the max over each group: in PyTorch, `linear(x).view(n, out, pieces).max(-1).values`.
public final class Maxout: Layer {
    let linear: Linear
    let pieces: Int
    let site: SourceSite

    public init(_ inFeatures: Int, _ outFeatures: Int, pieces: Int = 2, weightInit: Init = .pytorchDefault,
                name: String? = nil, file: String = #filePath, line: Int = #line, column: Int = #column) {
        site = NNDSL.site(file, line, column)
        if pieces < 1 { fail("Maxout needs at least one piece, got \(pieces)", at: site) }
        self.pieces = pieces
        linear = Linear(inFeatures, outFeatures * pieces, weightInit: weightInit, name: name,
                        file: file, line: line, column: column)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        Tensor(GraphBuilder.shared.add(.groupMax(pieces), [linear(x).id], site: site))
    }
}
