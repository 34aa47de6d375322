/// Layers that train on random variations of the network (#19): DropConnect, stochastic depth and fractional
/// max pooling. Each draws from the trainer's seeded generator (`--seed`), as Dropout does.

/// DropConnect (Wan et al. 2013) on a Linear layer's weight: in training each step multiplies W (out, in) by one
/// mask for the whole batch, each element 0 with probability `p` and 1/(1 − p) otherwise, as the practical
/// variant (and `F.dropout` on the weight, AWD-LSTM's WeightDrop) does; the bias is not dropped. In evaluation it
/// is the plain Linear layer (inverted scaling, so no Gaussian moment matching at inference). The parameters keep
/// the Linear's names (`2.weight`, `2.bias`), so weights load into the model without DropConnect and back. The
/// rate is a trainer flag (`--drop-connect`).
///
/// ```swift
/// Sequential { Linear(784, 256); ReLU(); DropConnect(0.5, Linear(256, 10)) }
/// ```
public final class DropConnect: Layer {
    public let p: Double
    let linear: Linear
    let site: SourceSite

    public init(_ p: Double, _ linear: Linear, file: String = #filePath, line: Int = #line, column: Int = #column) {
        site = NNDSL.site(file, line, column)
        checkDropProbability(p, "DropConnect", at: site)
        self.p = p
        self.linear = linear
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let b = GraphBuilder.shared
        let rate = dropoutHyper(p, family: "drop_connect", help: "DropConnect probability on a Linear's weight (0 disables it)")
        return linear.apply(x) { w in
            dropout(Tensor(w), p, mask: b.graph.type(w), rate: rate, site: site).id
        }
    }
}

/// Stochastic depth (Huang et al. 2016), as torchvision's `StochasticDepth(p, mode="row")`: in training each
/// sample's input is zeroed with probability `p` and kept scaled by 1/(1 − p) otherwise; the identity in
/// evaluation. Put it last in a residual branch, so that a dropped sample's block is the identity:
///
/// ```swift
/// Residual { Conv2d(32, 32, kernelSize: 3, padding: 1); BatchNorm2d(32); ReLU(); StochasticDepth(0.1) }
/// ```
///
/// The rate is a trainer flag (`--stochastic-depth`; several rates, such as torchvision's linear decay over the
/// blocks, are `--stochastic-depth`, `--stochastic-depth-2`, … in order of first use).
public final class StochasticDepth: Layer {
    public let p: Double
    let site: SourceSite

    public init(_ p: Double, file: String = #filePath, line: Int = #line, column: Int = #column) {
        site = NNDSL.site(file, line, column)
        checkDropProbability(p, "StochasticDepth", at: site)
        self.p = p
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let t = GraphBuilder.shared.graph.type(x.id)
        guard t.shape.batched else { fail("StochasticDepth expects a batched input, got \(t.shape)", at: site) }
        // One value per sample: (n) along a row of features, (n,1,1,1) over images (right-aligned broadcasting).
        let mask = Shape(batched: true, t.shape.dims.count == 1 ? [] : Array(repeating: 1, count: t.shape.dims.count))
        let rate = dropoutHyper(p, family: "stochastic_depth", help: "stochastic depth: the probability of dropping a residual branch per sample (0 disables it)")
        return dropout(x, p, mask: TensorType(.f32, mask), rate: rate, site: site)
    }
}

/// Fractional max pooling (Graham 2014), as PyTorch's `nn.FractionalMaxPool2d(kernel_size, output_ratio=…)`:
/// (n, C, H, W) → (n, C, ⌊H·r⌋, ⌊W·r⌋), each output the maximum of a `kernelSize` window at a pseudo-random
/// offset. Each (sample, channel) draws u ∈ [0, 1) per axis; along an axis of size S with O outputs and
/// α = (S − k)/(O − 1), window i starts at ⌊(i + u)·α⌋ − ⌊u·α⌋ and the last at S − k (PyTorch's sequence).
/// As PyTorch's module, it draws in training and in evaluation (eval and predict are reproducible per `--seed`,
/// not per weights alone); gradcheck fixes u = 0.5. It has no ONNX export.
///
/// ```swift
/// FractionalMaxPool2d(kernelSize: 2, outputRatio: 0.7)   // 28×28 → 19×19
/// ```
public final class FractionalMaxPool2d: Layer {
    let kernel: Size2
    let ratio: Double?, size: Size2?
    let site: SourceSite

    public init(kernelSize: Size2 = 2, outputRatio: Double, file: String = #filePath, line: Int = #line, column: Int = #column) {
        site = NNDSL.site(file, line, column)
        if !(outputRatio > 0 && outputRatio < 1) { fail("FractionalMaxPool2d outputRatio must be in (0, 1), got \(outputRatio)", at: site) }
        (kernel, ratio, size) = (kernelSize, outputRatio, nil)
        check()
    }

    public init(kernelSize: Size2 = 2, outputSize: Size2, file: String = #filePath, line: Int = #line, column: Int = #column) {
        site = NNDSL.site(file, line, column)
        if outputSize.h <= 0 || outputSize.w <= 0 { fail("FractionalMaxPool2d outputSize must be positive, got \(outputSize)", at: site) }
        (kernel, ratio, size) = (kernelSize, nil, outputSize)
        check()
    }

    private func check() {
        if kernel.h <= 0 || kernel.w <= 0 { fail("FractionalMaxPool2d kernelSize must be positive, got \(kernel)", at: site) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let b = GraphBuilder.shared
        let c = expectImages(x, layer: "FractionalMaxPool2d", site: site)
        let s = b.graph.type(x.id).shape
        let out = size?.pair ?? [Int(Double(s.dims[1]) * ratio!), Int(Double(s.dims[2]) * ratio!)]
        for (a, axis) in ["height", "width"].enumerated() {
            let (input, k) = (s.dims[1 + a], kernel.pair[a])
            if out[a] < 1 { fail("FractionalMaxPool2d: outputRatio \(ratio!) gives no output along the \(axis) \(input)", at: site) }
            if out[a] > input - k + 1 {
                fail("FractionalMaxPool2d: \(out[a]) outputs along the \(axis) need an input of at least \(out[a] + k - 1), got \(input) (kernelSize \(kernel))", at: site)
            }
        }
        let samples = TensorType(.f32, Shape(batched: true, [c, 2]))
        let drawn = b.add(.uniformNoise, [], declared: samples, site: site)
        let fixed = b.add(.broadcast, [b.add(.constant(0.5), [], site: site)], declared: samples, site: site)
        let u = b.name(b.add(.byMode(.poolSamples), [drawn, fixed], site: site), "u", b.scope.joined(separator: "."))
        return Tensor(b.add(.fractionalMaxPool2d(FractionalPool2dAttrs(kernel: kernel.pair, output: out)), [x.id, u], site: site))
    }
}
