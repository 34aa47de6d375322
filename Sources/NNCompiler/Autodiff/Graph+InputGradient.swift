import NNIR

/// A layer output the input-gradient program can start from: a value of the forward graph, the name the
/// generated C gives it (`h8`, `h3_0`), and whether it is the model's output (the logits of a classifier).
public struct SeededLayer: Sendable, Equatable {
    public var name: String
    public var value: ValueID
    /// Per sample: `(128)` for a Linear layer, `(32,28,28)` for a convolution's.
    public var shape: Shape
    public var isOutput: Bool
}

extension Graph {
    /// The largest batch the input-gradient program takes: saliency and maximize run one sample at a time, and a
    /// program planned for the training batch would need an arena of every layer's activations at that batch.
    public static let inputGradientMaxBatch = 16

    /// The layer outputs the input gradient can start from, in graph order: every value the DSL named after its
    /// layer (`h` and its index path: `h1`, `h3_0`, `h_fc`) that the model's output depends on, then the output
    /// itself when it has no such name (`output`). A name used twice keeps its first value.
    public func seededLayers() -> [SeededLayer] {
        guard let out = outputs[.output] else { return [] }
        let feeds = live(from: [out])
        var seen = Set<String>(), layers: [SeededLayer] = []
        for v in ids where feeds.contains(v) {
            let t = type(v)
            guard let name = self[v].name, Self.isLayerName(name), t.dtype == .f32, t.shape.batched, t.shape.dims.count <= 4,
                  seen.insert(name).inserted
            else { continue }
            layers.append(SeededLayer(name: name, value: v, shape: t.shape.unbatched, isOutput: v == out))
        }
        if !layers.contains(where: \.isOutput) {
            layers.append(SeededLayer(name: "output", value: out, shape: type(out).shape.unbatched, isOutput: true))
        }
        return layers
    }

    /// `h` followed by a digit or an underscore: how `Sequential` names its layers' outputs (`layerValueName`).
    static func isLayerName(_ s: String) -> Bool {
        guard s.first == "h", let c = s.dropFirst().first else { return false }
        return c.isNumber || c == "_"
    }

    /// The input-gradient graph of an eval-mode forward graph: for every seeded layer l an input `seed_<name>`
    /// of the layer's type, the scalar
    ///
    ///     score = Σ_l Σ_{sample, unit} seed_l ⊙ h_l
    ///
    /// and its gradient with respect to the input x, by the same reverse-mode walk as training's
    /// (`differentiated(_:withRespectTo:)`). A one-hot seed on the logits makes it the gradient of one class
    /// score (saliency); one on a hidden layer, of one unit (activation maximization). Samples do not mix in eval
    /// mode, so row i of the gradient is sample i's own. Outputs: `.score` and `.inputGradient`.
    public func inputGradient() throws -> Graph {
        guard let x = ids.first(where: { self[$0].op == .input("x") }) else {
            throw Diagnostic.error("\(name).swiftnn: the model has no input x to take the gradient with respect to")
        }
        let layers = seededLayers()
        var e = GraphEditor(self)
        var score: ValueID?
        for l in layers {
            e.site = self[l.value].site
            let seed = e.named("seed_" + l.name, e.add(.input("seed_" + l.name), [], declared: type(l.value)))
            let term = e.add(.sumAll, [e.mul(seed, l.value)])
            score = score.map { e.add($0, term) } ?? term
        }
        guard let score else { throw Diagnostic.error("\(name).swiftnn: the model has no output to take the gradient of") }
        let s = e.named("score", score)
        var (g, adjoints) = e.graph.differentiated(s, withRespectTo: [x])
        guard let dx = adjoints[0] else {
            throw Diagnostic.error("\(name).swiftnn: the model's output does not depend on its input x")
        }
        g.outputs = [.score: s, .inputGradient: dx, .output: outputs[.output]!]
        return g
    }

    /// The seed inputs of an input-gradient graph, in the order of `seededLayers()` (the entry point's `seeds[k]`):
    /// each with its layer and the C name of its pointer (`seed_h8`).
    public func seedInputs() -> [(layer: SeededLayer, seed: ValueID, name: String)] {
        seededLayers().compactMap { l in
            let name = "seed_" + l.name
            return ids.first { self[$0].op == .input(name) }.map { (l, $0, name) }
        }
    }
}
