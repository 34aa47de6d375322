/// Readable names for values, which the generated C uses instead of node numbers: a parameter after its layer
/// (`W0`, `b0` for `0.weight`, `0.bias`), a layer's output after its place in the model (`h1`), a gradient
/// after its value (`dh1`, `dW0`), and other values after their op and operands (`step_h1`,
/// `one_minus_beta1`). Names here are not unique; the C emitter makes them so in each function.
extension Graph {
    /// The name a value has by itself, without looking at its operands: the name the DSL, autodiff or the
    /// optimizer lowering gave it, or a source's (`x`, `W0`, `m_W0`, `lr`, `t`); nil for an unnamed result.
    public func properName(_ v: ValueID) -> String? {
        let n = self[v]
        if let name = n.name { return cIdentifier(name) }
        switch n.op {
        case .input(let s): return cIdentifier(s)
        case .param(let p): return shortName(p)
        case .state(let s): return "\(s.slot.rawValue)_\(shortName(s.param))"
        case .hyper(let h): return cIdentifier(self[h].name)
        case .stepCount: return "t"
        case .epochCount: return "epoch"
        case .lrOverride: return "lr_override"
        case .batchSize: return "batch"
        case .constant(let c):   // 0.9 → c_0p9, 1e-05 → c_1em05
            return [0: "zero", 1: "one", 2: "two", 0.5: "half"][c]
                ?? "c_" + formatNumber(c).map { $0 == "." ? "p" : $0 == "-" ? "m" : $0 == "+" ? "" : String($0) }.joined()
        case .assign(.param(let p)): return "\(shortName(p))_new"
        case .assign(.state(let s)): return "\(s.slot.rawValue)_\(shortName(s.param))_new"
        default: return nil
        }
    }

    /// A parameter's short name: `W` for a weight and `b` for a bias followed by the layer's index path
    /// (`0.weight` → `W0`, `1.0.bias` → `b1_0`, `fc.weight` → `W_fc`); another leaf keeps its name
    /// (`1.running_mean` → `running_mean_1`).
    public func shortName(_ p: ParamID) -> String {
        let name = self[p].name
        guard let dot = name.lastIndex(of: ".") else { return cIdentifier(name) }
        let prefix = String(name[..<dot]), leaf = String(name[name.index(after: dot)...])
        switch leaf {
        case "weight": return layerValueName("W", prefix)
        case "bias": return layerValueName("b", prefix)
        default: return cIdentifier(leaf + "_" + prefix)
        }
    }
}

/// A value of the layer at `path` ("0", "1.0", "fc"): `h` and "1.0" give `h1_0`, `W` and "fc" give `W_fc`.
public func layerValueName(_ letter: String, _ path: String) -> String {
    let p = cFragment(path)
    return p.first?.isNumber ?? false ? letter + p : letter + "_" + p
}

/// `s` as a C identifier: letters, digits and single underscores, not starting with a digit.
public func cIdentifier(_ s: String) -> String {
    let out = cFragment(s)
    if out.isEmpty { return "v" }
    return out.first!.isNumber ? "v" + out : out
}

/// `s` with every run of characters other than ASCII letters and digits as one underscore, none at the end.
public func cFragment(_ s: String) -> String {
    var out = ""
    for ch in s.unicodeScalars {
        let c = ch.isASCII && (ch.properties.isAlphabetic || ("0"..."9").contains(ch)) ? Character(ch) : "_"
        if c == "_", out.last == "_" { continue }
        out.append(c)
    }
    while out.last == "_" { out.removeLast() }
    return out
}

/// The names of a graph's values, proper or composed from their operands' (`step_h1`, `beta1_pow_t`,
/// `one_minus_beta1`), with `overrides` taking the place of some proper names (the optimizer loop over the
/// whole parameter arena calls its parameter `p` and its gradient `g`).
public struct ValueNamer {
    public let graph: Graph
    /// Each node's name, or nil where it has none but `tmp_<op>` (those do not compose further).
    private var names: [String?] = []
    /// A composed name longer than this is `tmp_<op>` instead.
    static let maxLength = 28

    /// Names every node, operands first (node order is a topological order).
    public init(_ graph: Graph, overrides: [ValueID: String] = [:]) {
        self.graph = graph
        names.reserveCapacity(graph.nodes.count)
        for v in graph.ids {
            let n = overrides[v] ?? graph.properName(v) ?? composed(v, graph[v].inputs.map { names[$0.index] })
            names.append(n.flatMap { $0.count <= Self.maxLength ? $0 : nil })
        }
    }

    /// The value's name: its proper name, else its op applied to its operands' names, else `tmp_<op>`.
    public func name(_ v: ValueID) -> String { names[v.index] ?? "tmp_" + cIdentifier(graph[v].op.mnemonic) }

    private func composed(_ v: ValueID, _ xs: [String?]) -> String? {
        let operands = xs.compactMap { $0 }
        guard operands.count == xs.count, !operands.isEmpty else { return nil }
        switch graph[v].op {
        case .unary(.reciprocal): return "inv_" + operands[0]
        case .unary(let f): return "\(f.rawValue)_\(operands[0])"
        case .binary(.add): return "\(operands[0])_plus_\(operands[1])"
        case .binary(.sub): return "\(operands[0])_minus_\(operands[1])"
        case .binary(.mul), .matmul: return "\(operands[0])_\(operands[1])"
        case .binary(.div): return "\(operands[0])_over_\(operands[1])"
        case .binary(.pow): return "\(operands[0])_pow_\(operands[1])"
        case .broadcast, .reshape: return operands[0]
        default: return "\(cIdentifier(graph[v].op.mnemonic))_\(operands[0])"
        }
    }
}
