/// Convolutional layers on images (n, C, H, W), with PyTorch's names, arguments and defaults.

/// A pair of sizes for (height, width), written as one number (`3`) or two (`[3, 2]`), as PyTorch's
/// `kernel_size=3` or `kernel_size=(3, 2)`.
public struct Size2: ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, Sendable, CustomStringConvertible {
    public let h: Int, w: Int
    public init(_ h: Int, _ w: Int) { self.h = h; self.w = w }
    public init(integerLiteral v: Int) { self.init(v, v) }
    public init(arrayLiteral v: Int...) {
        precondition(v.count == 2, "a size pair has two numbers, (height, width); got \(v)")
        self.init(v[0], v[1])
    }
    var pair: [Int] { [h, w] }
    public var description: String { h == w ? "\(h)" : "(\(h), \(w))" }
}

/// 2-d convolution, as PyTorch's `nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation,
/// groups, bias)`: the input (n, inChannels, H, W) gives (n, outChannels, OH, OW) with
/// OH = ⌊(H + 2·padding − dilation·(kernelSize − 1) − 1)/stride⌋ + 1. Parameters `weight`
/// (outChannels, inChannels/groups, kh, kw) and `bias` (outChannels), initialized as PyTorch does
/// (U(±1/√fanIn), fanIn = inChannels/groups·kh·kw).
///
/// ```swift
/// Conv2d(1, 32, kernelSize: 3, padding: 1)
/// ```
public final class Conv2d: Layer {
    public let inChannels: Int, outChannels: Int
    let kernel: Size2, attrs: Conv2dAttrs, bias: Bool
    let weightInit: Init, biasInit: Init
    let name: String?
    let site: SourceSite
    var created: (weight: ValueID, bias: ValueID?)?

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Size2, stride: Size2 = 1, padding: Size2 = 0,
                dilation: Size2 = 1, groups: Int = 1, bias: Bool = true, weightInit: Init = .pytorchDefault,
                biasInit: Init = .pytorchDefault, name: String? = nil,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        site = NNDSL.site(file, line, column)
        let what = "Conv2d(\(inChannels), \(outChannels), kernelSize: \(kernelSize))"
        if inChannels <= 0 || outChannels <= 0 { fail("\(what) needs positive channel counts", at: site) }
        if kernelSize.h <= 0 || kernelSize.w <= 0 { fail("\(what): the kernel size must be positive", at: site) }
        if stride.h <= 0 || stride.w <= 0 { fail("\(what): the stride must be positive, got \(stride)", at: site) }
        if padding.h < 0 || padding.w < 0 { fail("\(what): the padding cannot be negative, got \(padding)", at: site) }
        if dilation.h <= 0 || dilation.w <= 0 { fail("\(what): the dilation must be positive, got \(dilation)", at: site) }
        if groups <= 0 || inChannels % groups != 0 || outChannels % groups != 0 {
            fail("\(what): groups \(groups) must divide both channel counts", at: site)
        }
        self.inChannels = inChannels
        self.outChannels = outChannels
        kernel = kernelSize
        attrs = Conv2dAttrs(stride: stride.pair, padding: padding.pair, dilation: dilation.pair, groups: groups)
        self.bias = bias
        self.weightInit = weightInit
        self.biasInit = biasInit
        self.name = name
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let b = GraphBuilder.shared
        let what = "Conv2d(\(inChannels), \(outChannels), kernelSize: \(kernel))"
        let c = expectImages(x, layer: what, site: site)
        if c != inChannels { fail("\(what) expects \(inChannels) input channels, got an input \(b.graph.type(x.id).shape)", at: site) }
        if created == nil {
            let prefix = layerPrefix(name, kind: "conv")
            let rf = kernel.h * kernel.w
            let fans = (fanIn: inChannels / attrs.groups * rf, fanOut: outChannels / attrs.groups * rf)
            let w = declareParameter("\(prefix).weight", [outChannels, inChannels / attrs.groups, kernel.h, kernel.w],
                                     weightInit.resolve(fans, isBias: false), site: site)
            let bv = bias ? declareParameter("\(prefix).bias", [outChannels], biasInit.resolve(fans, isBias: true), site: site) : nil
            created = (w, bv)
        }
        let (w, bv) = created!
        return Tensor(b.add(.conv2d(attrs), [x.id, w] + (bv.map { [$0] } ?? []), site: site))
    }
}

/// 2-d max pooling, as `nn.MaxPool2d(kernel_size, stride=kernel_size, padding=0)`. The gradient goes to each
/// window's first maximum, as PyTorch's.
public final class MaxPool2d: FunctionLayer {
    public init(kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        super.init(.maxPool2d(Pool2dAttrs(kernel: kernelSize.pair, stride: stride?.pair, padding: padding.pair)),
                   NNDSL.site(file, line, column))
    }
    public convenience init(_ kernelSize: Int, file: String = #filePath, line: Int = #line, column: Int = #column) {
        self.init(kernelSize: Size2(kernelSize, kernelSize), file: file, line: line, column: column)
    }
    public override func callAsFunction(_ x: Tensor) -> Tensor {
        _ = expectImages(x, layer: "MaxPool2d", site: site)
        return super.callAsFunction(x)
    }
}

/// 2-d average pooling, as `nn.AvgPool2d(kernel_size, stride=kernel_size, padding=0, count_include_pad=True)`.
public final class AvgPool2d: FunctionLayer {
    public init(kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0, countIncludePad: Bool = true,
                file: String = #filePath, line: Int = #line, column: Int = #column) {
        super.init(.avgPool2d(Pool2dAttrs(kernel: kernelSize.pair, stride: stride?.pair, padding: padding.pair,
                                          countIncludePad: countIncludePad)),
                   NNDSL.site(file, line, column))
    }
    public convenience init(_ kernelSize: Int, file: String = #filePath, line: Int = #line, column: Int = #column) {
        self.init(kernelSize: Size2(kernelSize, kernelSize), file: file, line: line, column: column)
    }
    public override func callAsFunction(_ x: Tensor) -> Tensor {
        _ = expectImages(x, layer: "AvgPool2d", site: site)
        return super.callAsFunction(x)
    }
}

/// Global average pooling, as `nn.AdaptiveAvgPool2d(1)`: (n, C, H, W) → (n, C, 1, 1), each channel's mean.
/// Only an output size of 1 is supported.
public final class AdaptiveAvgPool2d: Layer {
    let site: SourceSite
    public init(_ outputSize: Int, file: String = #filePath, line: Int = #line, column: Int = #column) {
        site = NNDSL.site(file, line, column)
        if outputSize != 1 { fail("AdaptiveAvgPool2d supports an output size of 1 (global average pooling), got \(outputSize)", at: site) }
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let b = GraphBuilder.shared
        _ = expectImages(x, layer: "AdaptiveAvgPool2d(1)", site: site)
        let s = b.graph.type(x.id).shape
        let sum = b.add(.sumTo, [x.id], declared: TensorType(.f32, Shape(batched: true, [s.dims[0], 1, 1])), site: site)
        return Tensor(b.add(.binary(.mul), [sum, b.add(.constant(1 / Double(s.dims[1] * s.dims[2])), [], site: site)], site: site))
    }
}

/// Flattens each sample, as `nn.Flatten()`: (n, C, H, W) → (n, C·H·W) in row-major order.
public final class Flatten: Layer {
    let site: SourceSite
    public init(file: String = #filePath, line: Int = #line, column: Int = #column) { site = NNDSL.site(file, line, column) }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let b = GraphBuilder.shared
        let s = b.graph.type(x.id).shape
        guard s.batched else { fail("Flatten expects a batched input, got \(s)", at: site) }
        if s.dims.count == 1 { return x }
        return Tensor(b.add(.reshape, [x.id], declared: TensorType(.f32, Shape(batched: true, [s.fixedCount])), site: site))
    }
}

/// Channel dropout, as `nn.Dropout2d(p)`: in training each channel of each sample is zeroed with probability
/// `p` and the rest scaled by 1/(1 − p); the identity in evaluation. The rate is the trainer's `--dropout`.
public final class Dropout2d: Layer {
    public let p: Double
    let site: SourceSite

    public init(_ p: Double = 0.5, file: String = #filePath, line: Int = #line, column: Int = #column) {
        site = NNDSL.site(file, line, column)
        checkDropProbability(p, "Dropout2d", at: site)
        self.p = p
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let c = expectImages(x, layer: "Dropout2d", site: site)
        return dropout(x, p, mask: TensorType(.f32, Shape(batched: true, [c, 1, 1])), site: site)
    }
}

/// Stops with a diagnostic at the layer's site unless `x` is a batch of images (n, C, H, W); returns C.
func expectImages(_ x: Tensor, layer: String, site: SourceSite) -> Int {
    let t = GraphBuilder.shared.graph.type(x.id)
    guard t.shape.batched, t.shape.dims.count == 3 else {
        fail("\(layer) expects images (n,C,H,W), got \(t.shape)", at: site)
    }
    return t.shape.dims[0]
}
