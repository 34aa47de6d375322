import NNIR

extension Program {
    /// Moves a 2×2 max pooling (stride 2, no padding, even input) into the call of the convolution before it, and
    /// the pooling's backward into the calls of the convolution's backward (runtime/conv_pool.c,
    /// `nnrt_conv2d_*_maxpool2`), so that the convolution's (n, K, OH, OW) output and the gradient at it are never
    /// in memory:
    /// - the convolution's kernel (`conv2d`, its fused ReLU) takes the pooling into its body and writes the pooled
    ///   output; the value the pooling read is then stored as one byte per window only (`pooledValues`): where
    ///   the window's maximum is and whether it is positive, all the backward needs of it;
    /// - the pooling's backward kernel (`max_pool2d_grad`, with the ReLU's mask fused) takes the convolution's
    ///   input and weight gradients (and the bias gradient in the weight gradient's body) into its body: those
    ///   calls read the pooled gradient and the window bytes instead of a dense dy.
    /// All or nothing per convolution: the pooled value must have no other reader, and its gradient no reader but
    /// that convolution's backward. Measured on the CNN example (bench/conv_bench.c `pool`, 1 thread, CPU time):
    /// the two layers' forward and backward calls 27.7 → 18.7 ms per step.
    mutating func fusePoolingIntoConvolutions() {
        let users = graph.users(), live = Set(kernels.flatMap(\.nodes)), at = kernelIndex()
        func liveUsers(_ v: ValueID) -> [ValueID] { users[v.index].filter(live.contains) }
        var removed = Set<Int>()
        for c in kernels.indices where kernels[c].kind == .window && kernels[c].body.count <= 1 {
            guard let conv = kernels[c].anchor, case .conv2d(let ca) = graph[conv].op else { continue }
            let r = kernels[c].body.first ?? conv   // what the pooling reads: the convolution's output, after its ReLU
            let readers = liveUsers(r)
            guard let pool = readers.first(where: { if case .maxPool2d = graph[$0].op { return true } else { return false } }),
                  case .maxPool2d(let pa) = graph[pool].op, Self.isPool2x2(pa, graph.type(r).shape),
                  let p = at[pool], kernels[p].anchor == pool, kernels[p].body.isEmpty else { continue }
            let backward = readers.filter { $0 != pool }
            if !backward.isEmpty {
                guard let grad = backward.first(where: { graph[$0].op == .maxPool2dGrad(pa) && graph[$0].inputs[1] == r }),
                      let b = at[grad], kernels[b].anchor == grad, backward.allSatisfy({ at[$0] == b }),
                      kernels[b].body.count == (r == conv ? 0 : 2),   // under a ReLU, its mask is in the body
                      let convGrads = convolutionGradients(of: kernels[b].body.last ?? grad, conv: conv, attrs: ca,
                                                           liveUsers: liveUsers, at: at)
                else { continue }
                for k in convGrads.sorted() {
                    kernels[b].body += kernels[k].nodes
                    removed.insert(k)
                }
            }
            kernels[c].body.append(pool)
            removed.insert(p)
        }
        kernels = kernels.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// The kernels computing the input and weight gradients (the bias gradient in the latter's body) of
    /// convolution `conv` from `g`, when they are `g`'s only readers and window kernels of nothing else; nil if not.
    private func convolutionGradients(of g: ValueID, conv: ValueID, attrs: Conv2dAttrs, liveUsers: (ValueID) -> [ValueID],
                                      at: [ValueID: Int]) -> Set<Int>? {
        let (x, w) = (graph[conv].inputs[0], graph[conv].inputs[1])
        var ks = Set<Int>(), weight = false
        for u in liveUsers(g) {
            guard let k = at[u], kernels[k].kind == .window, graph[u].inputs[0] == g else { return nil }
            switch graph[u].op {
            case .conv2dGradInput(attrs) where graph[u].inputs[1] == w: break
            case .conv2dGradWeight(attrs) where graph[u].inputs[1] == x: weight = true
            case .conv2dGradBias: break
            default: return nil
            }
            ks.insert(k)
        }
        // Each kernel: one gradient call, or the weight's with the bias's in its body.
        guard weight, ks.allSatisfy({ k in kernels[k].nodes.allSatisfy { liveUsers(g).contains($0) } }) else { return nil }
        return ks
    }

    static func isConvolutionGradient(_ op: Op) -> Bool {
        switch op {
        case .conv2dGradInput, .conv2dGradWeight, .conv2dGradBias: return true
        default: return false
        }
    }

    /// Whether the runtime's fused calls take this pooling of a (C, H, W) value: 2×2, stride 2, no padding, H and
    /// W even (so that every pixel is in one window).
    static func isPool2x2(_ a: Pool2dAttrs, _ x: Shape) -> Bool {
        a.kernel == [2, 2] && a.stride == [2, 2] && a.padding == [0, 0] && x.dims.count == 3 && x.dims[1] % 2 == 0
            && x.dims[2] % 2 == 0
    }

    /// The values that `fusePoolingIntoConvolutions` left to be stored as their max pooling's window bytes (one
    /// per window: nnrt_window.h), each with its pooling: the ReLU's (or the convolution's) output in a
    /// convolution kernel that also pools.
    public func pooledValues() -> [ValueID: ValueID] {
        var out: [ValueID: ValueID] = [:]
        for k in kernels where k.kind == .window {
            guard let a = k.anchor, case .conv2d = graph[a].op, let pool = k.body.last, case .maxPool2d = graph[pool].op
            else { continue }
            out[graph[pool].inputs[0]] = pool
        }
        return out
    }
}
