import NNIR

/// The float64 semantics of fractional max pooling (PyTorch's `fractional_max_pool2d` and its backward), given
/// the samples u (n, C, 2): the reference for runtime/fracpool.c.
extension Op {
    func fractionalPool(_ x: [Tensor64], _ full: [Int]) -> Tensor64 {
        var out = Tensor64(shape: full, repeating: 0)
        switch self {
        case .fractionalMaxPool2d(let a):
            FractionalPoolIndex(a, x: x[0].shape, u: x[1]).forEachRegion { o, taps in
                out.data[o] = x[0].data[FractionalPoolIndex.argmax(taps, x[0])]
            }
        case .fractionalMaxPool2dGrad(let a):   // to each region's first maximum, added where regions overlap
            FractionalPoolIndex(a, x: x[1].shape, u: x[2]).forEachRegion { o, taps in
                out.data[FractionalPoolIndex.argmax(taps, x[1])] += x[0].data[o]
            }
        default: preconditionFailure("\(mnemonic) is not a fractional pooling")
        }
        return out
    }
}

/// Index arithmetic of a fractional max pooling over x (n, C, H, W) with samples u (n, C, 2).
struct FractionalPoolIndex {
    let a: FractionalPool2dAttrs
    let planes, h, w: Int
    let u: Tensor64

    init(_ a: FractionalPool2dAttrs, x: [Int], u: Tensor64) {
        self.a = a
        (planes, h, w) = (x[0] * x[1], x[2], x[3])
        self.u = u
    }

    /// Calls `body(output index, input indices in row-major window order)` for every region.
    func forEachRegion(_ body: (Int, [Int]) -> Void) {
        let (oh, ow) = (a.output[0], a.output[1])
        for p in 0..<planes {
            let uw = u.data[2 * p], uh = u.data[2 * p + 1]   // u[…, 0] places the columns, u[…, 1] the rows
            for oy in 0..<oh {
                let y0 = a.start(oy, size: h, u: uh, axis: 0)
                for ox in 0..<ow {
                    let x0 = a.start(ox, size: w, u: uw, axis: 1)
                    var taps: [Int] = []
                    for i in 0..<a.kernel[0] { for j in 0..<a.kernel[1] { taps.append((p * h + y0 + i) * w + x0 + j) } }
                    body((p * oh + oy) * ow + ox, taps)
                }
            }
        }
    }

    /// The first maximum in window order, a NaN counting as the maximum (PyTorch's rule).
    static func argmax(_ taps: [Int], _ x: Tensor64) -> Int {
        var best = taps[0], value = -Double.infinity
        for t in taps where x.data[t] > value || x.data[t].isNaN {
            best = t
            value = x.data[t]
        }
        return best
    }
}
