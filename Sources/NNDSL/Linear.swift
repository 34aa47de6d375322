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

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let b = GraphBuilder.shared
        let t = b.graph.type(x.id)
        guard t.shape.batched, t.shape.dims == [inFeatures] else {
            fail("Linear(\(inFeatures), \(outFeatures)) expects input (n,\(inFeatures)), got \(t.shape)", at: site)
        }
        let (w, bv) = created ?? makeParameters()
        created = (w, bv)
        var y = b.add(.matmul(transA: false, transB: true), [x.id, w], site: site)
        if let bv { y = b.add(.binary(.add), [y, bv], site: site) }
        return Tensor(y)
    }

    private func makeParameters() -> (ValueID, ValueID?) {
        let b = GraphBuilder.shared
        let prefix = name.map { b.scoped($0) } ?? (b.scope.isEmpty ? b.autoName("linear") : b.scope.joined(separator: "."))
        let fans = (fanIn: inFeatures, fanOut: outFeatures)
        let w = parameter("\(prefix).weight", [outFeatures, inFeatures], weightInit.resolve(fans, isBias: false))
        let bv = bias ? parameter("\(prefix).bias", [outFeatures], biasInit.resolve(fans, isBias: true)) : nil
        return (w, bv)
    }

    private func parameter(_ name: String, _ shape: [Int], _ initializer: Initializer) -> ValueID {
        let b = GraphBuilder.shared
        if b.graph.param(named: name) != nil { fail("two parameters are named '\(name)'", at: site) }
        b.graph.params.append(ParamInfo(name: name, shape: shape, initializer: initializer))
        return b.add(.param(name), [], declared: TensorType(.f32, Shape(shape)), site: site)
    }
}
