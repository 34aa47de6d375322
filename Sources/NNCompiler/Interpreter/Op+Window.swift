import NNIR

/// The float64 semantics of the window ops on (n, C, H, W), written as directly as their definitions (PyTorch's
/// `conv2d`, `max_pool2d`, `avg_pool2d` with count_include_pad): the reference the generated C and runtime/'s
/// kernels are checked against.
extension Op {
    func window(_ x: [Tensor64], _ full: [Int]) -> Tensor64 {
        var out = Tensor64(shape: full, repeating: 0)
        switch self {
        case .conv2d(let a):
            let g = ConvIndex(a, x: x[0].shape, w: x[1].shape)
            g.forEachTap { n, k, oy, ox, c, wi, xi in
                out.data[g.y(n, k, oy, ox)] += x[0].data[xi] * x[1].data[wi]
            }
            if x.count == 3 {
                for i in out.data.indices { out.data[i] += x[2].data[(i / (g.oh * g.ow)) % g.k] }
            }
        case .conv2dGradInput(let a):   // dx[xi] = Σ dy[y]·w[wi] over the taps that read xi
            let g = ConvIndex(a, x: full, w: x[1].shape)
            g.forEachTap { n, k, oy, ox, c, wi, xi in out.data[xi] += x[0].data[g.y(n, k, oy, ox)] * x[1].data[wi] }
        case .conv2dGradWeight(let a):  // dw[wi] = Σ dy[y]·x[xi]
            let g = ConvIndex(a, x: x[1].shape, w: full)
            g.forEachTap { n, k, oy, ox, c, wi, xi in out.data[wi] += x[0].data[g.y(n, k, oy, ox)] * x[1].data[xi] }
        case .conv2dGradBias:
            let (k, hw) = (x[0].shape[1], x[0].shape[2] * x[0].shape[3])
            for (i, v) in x[0].data.enumerated() { out.data[(i / hw) % k] += v }
        case .maxPool2d(let a):
            PoolIndex(a, x: x[0].shape).forEachWindow { o, taps in
                out.data[o] = taps.map { x[0].data[$0] }.max() ?? -Double.infinity
            }
        case .maxPool2dGrad(let a):     // to the first maximum of each window, added where windows overlap
            PoolIndex(a, x: x[1].shape).forEachWindow { o, taps in
                guard let best = taps.max(by: { x[1].data[$0] < x[1].data[$1] }).map({ m in
                    taps.first { x[1].data[$0] == x[1].data[m] }! }) else { return }
                out.data[best] += x[0].data[o]
            }
        case .avgPool2d(let a):
            PoolIndex(a, x: x[0].shape).forEachWindow { o, taps in
                out.data[o] = taps.reduce(0) { $0 + x[0].data[$1] } / Double(a.countIncludePad ? a.kernel[0] * a.kernel[1] : taps.count)
            }
        case .avgPool2dGrad(let a):
            PoolIndex(a, x: full).forEachWindow { o, taps in
                for t in taps { out.data[t] += x[0].data[o] / Double(a.countIncludePad ? a.kernel[0] * a.kernel[1] : taps.count) }
            }
        default: preconditionFailure("\(mnemonic) is not a window op")
        }
        return out
    }
}

/// Index arithmetic of a convolution of x (n, C, H, W) by w (K, C/groups, kh, kw).
private struct ConvIndex {
    let a: Conv2dAttrs
    let n, c, h, w, k, kh, kw, oh, ow: Int

    init(_ a: Conv2dAttrs, x: [Int], w wt: [Int]) {
        self.a = a
        (n, c, h, w) = (x[0], x[1], x[2], x[3])
        (k, kh, kw) = (wt[0], wt[2], wt[3])
        oh = a.outputSize(h, kernel: kh, axis: 0)
        ow = a.outputSize(w, kernel: kw, axis: 1)
    }

    func y(_ b: Int, _ o: Int, _ oy: Int, _ ox: Int) -> Int { ((b * k + o) * oh + oy) * ow + ox }

    /// Calls `body(n, k, oy, ox, c, weight index, input index)` for every product of the convolution whose input
    /// element is inside the image (padding reads zeros).
    func forEachTap(_ body: (Int, Int, Int, Int, Int, Int, Int) -> Void) {
        let cg = c / a.groups, kg = k / a.groups
        for b in 0..<n { for o in 0..<k { for oy in 0..<oh { for ox in 0..<ow {
            for ci in 0..<cg { for i in 0..<kh { for j in 0..<kw {
                let iy = oy * a.stride[0] - a.padding[0] + i * a.dilation[0]
                let ix = ox * a.stride[1] - a.padding[1] + j * a.dilation[1]
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                let ch = (o / kg) * cg + ci
                body(b, o, oy, ox, ch, ((o * cg + ci) * kh + i) * kw + j, ((b * c + ch) * h + iy) * w + ix)
            } } }
        } } } }
    }
}

/// Index arithmetic of a pooling window over x (n, C, H, W).
private struct PoolIndex {
    let a: Pool2dAttrs
    let n, c, h, w, oh, ow: Int

    init(_ a: Pool2dAttrs, x: [Int]) {
        self.a = a
        (n, c, h, w) = (x[0], x[1], x[2], x[3])
        oh = a.outputSize(h, axis: 0)
        ow = a.outputSize(w, axis: 1)
    }

    /// Calls `body(output index, input indices in row-major window order)` for every window; padding is left out.
    func forEachWindow(_ body: (Int, [Int]) -> Void) {
        for p in 0..<(n * c) { for oy in 0..<oh { for ox in 0..<ow {
            var taps: [Int] = []
            for i in 0..<a.kernel[0] { for j in 0..<a.kernel[1] {
                let iy = oy * a.stride[0] - a.padding[0] + i, ix = ox * a.stride[1] - a.padding[1] + j
                if iy >= 0, iy < h, ix >= 0, ix < w { taps.append((p * h + iy) * w + ix) }
            } }
            body((p * oh + oy) * ow + ox, taps)
        } } }
    }
}
