/// The parameters a penalty applies to.
public enum ParameterSelection: Sendable {
    /// Weight matrices: parameters of rank ≥ 2, such as `Linear`'s `weight`. Not biases, not the per-feature
    /// scales and shifts of normalization layers (which are vectors). The default.
    case weights
    /// Every trainable parameter.
    case all
    /// Exactly these parameters, by state_dict name: `.named(["0.weight", "2.weight"])`.
    case named([String])
}

/// A regularization penalty added to the loss as graph code, so its gradient comes from autodiff.
///
/// ```swift
/// train(model, input: 784, loss: .crossEntropy, optimizer: SGD(learningRate: 0.1), penalty: .l2(1e-4))
/// ```
/// The coefficients are run-time hyperparameters: `--l1` and `--l2` on the trainer's command line.
public struct Penalty: Sendable {
    let l1: Double?
    let l2: Double?
    let selection: ParameterSelection
    let site: SourceSite

    /// λ·Σ|w|.
    public static func l1(_ lambda: Double, on selection: ParameterSelection = .weights,
                          file: String = #filePath, line: Int = #line, column: Int = #column) -> Penalty {
        make(l1: lambda, l2: nil, selection, NNDSL.site(file, line, column))
    }
    /// λ·Σw² (no ½; SGD's `weight_decay` wd is the same gradient as `.l2(wd / 2)`).
    public static func l2(_ lambda: Double, on selection: ParameterSelection = .weights,
                          file: String = #filePath, line: Int = #line, column: Int = #column) -> Penalty {
        make(l1: nil, l2: lambda, selection, NNDSL.site(file, line, column))
    }
    /// l1·Σ|w| + l2·Σw². The lectures' λ·Σ(β·w² + |w|) is `.elasticNet(l1: λ, l2: λ·β)`.
    public static func elasticNet(l1: Double, l2: Double, on selection: ParameterSelection = .weights,
                                  file: String = #filePath, line: Int = #line, column: Int = #column) -> Penalty {
        make(l1: l1, l2: l2, selection, NNDSL.site(file, line, column))
    }

    private static func make(l1: Double?, l2: Double?, _ selection: ParameterSelection, _ s: SourceSite) -> Penalty {
        for (name, v) in [("l1", l1), ("l2", l2)] {
            if let v, !(v >= 0 && v.isFinite) { fail("penalty coefficient \(name) must be a finite number ≥ 0, got \(v)", at: s) }
        }
        return Penalty(l1: l1, l2: l2, selection: selection, site: s)
    }

    /// The parameters selected, in declaration order; a selection that names an unknown parameter or selects
    /// nothing is an error at the penalty's site.
    func parameters(in graph: Graph) -> [ParamID] {
        let trainable = graph.paramIDs.filter { graph[$0].trainable }
        switch selection {
        case .weights:
            let ws = trainable.filter { graph[$0].shape.count >= 2 }
            if ws.isEmpty { fail("the penalty applies to weight matrices, and the model has none", at: site) }
            return ws
        case .all:
            return trainable
        case .named(let names):
            if names.isEmpty { fail("the penalty's parameter list is empty", at: site) }
            for n in names where !trainable.contains(where: { graph[$0].name == n }) {
                let known = trainable.map { graph[$0].name }.joined(separator: ", ")
                fail("the penalty names parameter '\(n)', which the model does not have (it has \(known))", at: site)
            }
            return trainable.filter { names.contains(graph[$0].name) }
        }
    }

    /// l1·Σ|w| + l2·Σw² over the selected parameters.
    func build() -> ValueID {
        let b = GraphBuilder.shared
        let e = Expr(site: site)
        let ps = parameters(in: b.graph).map { b.graph.node(of: $0)! }
        func total(_ f: UnaryFn) -> ValueID {
            ps.dropFirst().reduce(e.sumAll(e.unary(f, ps[0]))) { e.add($0, e.sumAll(e.unary(f, $1))) }
        }
        var terms: [ValueID] = []
        if let l1 { terms.append(e.mul(e.hyper("l1", l1, "L1 penalty coefficient λ₁ (λ₁·Σ|w|)"), total(.abs))) }
        if let l2 { terms.append(e.mul(e.hyper("l2", l2, "L2 penalty coefficient λ₂ (λ₂·Σw²)"), total(.square))) }
        return terms.dropFirst().reduce(terms[0], e.add)
    }
}
