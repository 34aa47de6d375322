import NNIR

/// The entry points a trainer needs, each a subset of the joint graph.
public enum ProgramKind: String, CaseIterable, Sendable {
    /// forward, loss, backward and the optimizer update
    case train
    /// forward and loss, with the model's output
    case eval
    /// forward only
    case predict
    /// forward, loss and the gradients, in float64, for `gradcheck`
    case gradcheck
    /// train with soft targets (n, k) in place of the class labels, for mixup and CutMix (`Graph.withSoftLabels`)
    case trainMixed = "train_mixed"
    /// eval-mode forward and the gradient of seeded layer outputs with respect to the input, for `saliency` and
    /// `maximize` (Graph+InputGradient.swift)
    case inputGrad = "input_grad"
    /// forward in training mode, writing each batch's BatchNorm statistics into the running buffers (SWA's
    /// `update_bn`); only for models with running statistics
    case updateBN = "update_bn"

    /// The programs that take an optimizer step.
    public var updates: Bool { self == .train || self == .trainMixed }
}

/// A unit of generated code: one loop nest, one GEMM with its epilogue loop, or one row-wise operation.
public struct Kernel: Sendable {
    public enum Kind: Sendable, Equatable {
        /// A scalar statement, computed in a local variable.
        case scalar
        /// `anchor` = op(A) @ op(B) through BLAS, then `body` applied to each element of the result.
        case gemm
        /// A loop over `space` computing `body` (elementwise nodes and reductions of them).
        case loop
        /// One row-wise operation (`anchor`): log-softmax, softmax cross-entropy, …
        case rowwise
        /// One window op (`anchor`: a convolution, a pooling or their backward), a call into runtime/
        /// (nnrt_window.h); `body` holds what the call does besides: a ReLU after a convolution and a 2×2 max
        /// pooling after that; a convolution's bias gradient with its weight gradient; a ReLU's mask after a max
        /// pooling's backward, and then the convolution's gradients (Program+FusePooling.swift).
        case window
        /// The optimizer update as one loop over the flat parameter arena (elements `range` of it): `body` is
        /// the update of the first parameter; every parameter in `params` has the same update.
        case arenaUpdate(params: [ParamID])
    }

    public var kind: Kind
    public var anchor: ValueID?
    /// Nodes computed inside the kernel's loop, in order.
    public var body: [ValueID] = []
    /// The iteration space of the loop.
    public var space: Shape
    /// A readable name, assigned after scheduling (`h1_matmul_add_relu`): its C function's.
    public var name = ""
    /// The name of the main value it computes (`h1`), which names it in a pair (`pair_dh1_dW2`).
    public var principal = ""

    public var nodes: [ValueID] { (anchor.map { [$0] } ?? []) + body }
}

/// One entry point: its roots in the joint graph, and the scheduled kernels that compute them.
public struct Program: Sendable {
    public var kind: ProgramKind
    public var graph: Graph
    /// Where the parameters and their state are: the same for every program of a model.
    public var layout: ParamLayout
    public var roots: [ValueID]
    public var kernels: [Kernel] = []

    /// Which kernel computes each node (sources have none).
    public func kernelIndex() -> [ValueID: Int] {
        var k: [ValueID: Int] = [:]
        for (i, kern) in kernels.enumerated() { for v in kern.nodes { k[v] = i } }
        return k
    }

    /// The values that must live in memory: used outside the kernel that computes them, or a root.
    /// Body nodes that only feed their own kernel stay in registers.
    public func materialized() -> Set<ValueID> {
        let where_ = kernelIndex()
        let rootSet = Set(roots)
        var m = Set<ValueID>()
        for (i, kern) in kernels.enumerated() {
            for v in kern.nodes where rootSet.contains(v) { m.insert(v) }
            for v in kern.nodes {
                for x in graph[v].inputs where where_[x] != nil && where_[x] != i { m.insert(x) }
            }
        }
        return m
    }
}

extension Graph {
    /// The program's roots: the values it must produce.
    func roots(for kind: ProgramKind) -> [ValueID] {
        let effects = ids.filter { if case .assign = self[$0].op { return true } else { return false } }
        let grads = paramIDs.compactMap { gradient(of: $0) }
        switch kind {
        // The merged optimizer loop reads every gradient from the grads arena, so each is a root.
        case .train, .trainMixed: return [outputs[.loss]!, outputs[.learningRate]!] + effects + grads
        case .eval: return [outputs[.loss]!, outputs[.output]!]
        case .predict: return [outputs[.output]!]
        case .gradcheck: return [outputs[.loss]!] + grads
        case .inputGrad: return [outputs[.score]!, outputs[.inputGradient]!]
        case .updateBN: return effects
        }
    }
}
