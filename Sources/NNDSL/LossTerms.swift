/// A weighted sum of losses, each on one head of the model: deep supervision, as GoogLeNet's auxiliary
/// classifiers. The first term's head is the model's output; the others are auxiliary heads that only training
/// sees.
///
/// ```swift
/// let x = Input(784)
/// let h = x |> Linear(784, 256, name: "body") |> ReLU()
/// let main = Linear(256, 10, name: "head")(h)
/// let aux = Linear(784, 10, name: "aux")(x)
/// train(loss: crossEntropy(main) + 0.3 * crossEntropy(aux), optimizer: Adam())
/// ```
/// Training minimizes Σ wᵢ·lossᵢ(headᵢ). Evaluation (validation and test loss, `eval`), `predict` and the ONNX export
/// use the first head alone, and the loss they report is its unweighted criterion.
public struct LossTerms {
    struct Term {
        var loss: Loss
        var head: Tensor
        var weight: Double
        var site: SourceSite
    }
    var terms: [Term]

    /// The sum of both sides' terms, in order: the left side's first term stays the main head.
    public static func + (a: LossTerms, b: LossTerms) -> LossTerms { LossTerms(terms: a.terms + b.terms) }

    /// Every term weighted by `w` (checked by `train`: a finite number ≥ 0).
    public static func * (w: Double, a: LossTerms) -> LossTerms {
        LossTerms(terms: a.terms.map { var t = $0; t.weight *= w; return t })
    }
}

extension Loss {
    /// This loss on one head of the model, a term of a `LossTerms` sum: `Loss.mse(aux)`.
    public func callAsFunction(_ head: Tensor, file: String = #filePath, line: Int = #line,
                               column: Int = #column) -> LossTerms {
        LossTerms(terms: [.init(loss: self, head: head, weight: 1, site: site(file, line, column))])
    }
}

/// Cross-entropy on the logits of one head (`Loss.crossEntropy`), a term of a `LossTerms` sum.
public func crossEntropy(_ head: Tensor, labelSmoothing: Double = 0,
                         file: String = #filePath, line: Int = #line, column: Int = #column) -> LossTerms {
    let loss = Loss.crossEntropy(labelSmoothing: labelSmoothing, file: file, line: line, column: column)
    return LossTerms(terms: [.init(loss: loss, head: head, weight: 1, site: site(file, line, column))])
}

/// The functional form with auxiliary heads: `loss` is a weighted sum of losses whose first term's head is the
/// model's output (see `LossTerms`).
public func train(loss: LossTerms, optimizer: Optimizer, schedule: LRSchedule = .constant,
                  schedulePer: ScheduleStep = .step, batchSize: Int = 64, epochs: Int = 10,
                  seed: UInt64 = 0, maxBatch: Int? = nil, penalty: Penalty? = nil,
                  file: String = #filePath, line: Int = #line, column: Int = #column) {
    finish(loss, optimizer: optimizer, schedule: schedule, schedulePer: schedulePer, batchSize: batchSize,
           epochs: epochs, seed: seed, maxBatch: maxBatch, penalty: penalty, site: site(file, line, column))
}

extension LossTerms {
    var main: Term { terms[0] }

    /// Stops with a diagnostic at a term's site unless every weight is a finite number ≥ 0, every head depends on
    /// the input and has the main head's shape, and every loss takes the same kind of targets.
    func check(input x: ValueID) {
        let g = GraphBuilder.shared.graph
        let shape = g.type(main.head.id).shape
        for t in terms {
            let what = terms.count > 1 ? "the loss term at \(t.site.line):\(t.site.column)" : "the loss"
            if !(t.weight.isFinite && t.weight >= 0) {
                fail("the weight of \(what) must be a finite number ≥ 0, got \(t.weight)", at: t.site)
            }
            if !g.live(from: [t.head.id]).contains(x) {
                fail("the head of \(what) does not depend on the model's Input(…)", at: t.site)
            }
            if t.loss.target != main.loss.target {
                fail("\(what) takes \(t.loss.target == .classes ? "class labels" : "dense targets") but the main "
                     + "head's loss takes \(main.loss.target == .classes ? "class labels" : "dense targets"); the "
                     + "heads share one target", at: t.site)
            }
            if g.type(t.head.id).shape != shape {
                fail("an auxiliary head must have the main head's shape \(shape), got \(g.type(t.head.id).shape)", at: t.site)
            }
        }
    }

    /// The training loss Σ wᵢ·lossᵢ, and the main head's unweighted criterion, which evaluation reports. With one
    /// term of weight 1 they are the same value.
    func build(_ y: ValueID) -> (train: ValueID, criterion: ValueID) {
        let b = GraphBuilder.shared
        let criterion = main.loss.build(main.head.id, y, site: main.site)
        guard terms.count > 1 || main.weight != 1 else { return (criterion, criterion) }
        b.graph.nodes[criterion.index].name = "criterion"
        var total: ValueID?
        for (i, t) in terms.enumerated() {
            let e = Expr(site: t.site)
            let l = i == 0 ? criterion : t.loss.build(t.head.id, y, site: t.site)
            let weighted = t.weight == 1 ? l : e.mul(e.const(t.weight), l)
            if i > 0 { b.graph.nodes[weighted.index].name = "aux_loss\(i)" }
            total = total.map { e.add($0, weighted) } ?? weighted
        }
        return (total!, criterion)
    }
}
