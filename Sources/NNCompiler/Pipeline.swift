import NNIR

/// The stages of `nncc compile`, each with a text dump (`--emit=<stage>`).
public enum Stage: String, CaseIterable, Sendable {
    case graph, grad, fused, plan, c, binary
}

public struct PipelineOptions: Sendable {
    /// Off gives the unfused reference path (`--no-fusion`), for bisecting a miscompile.
    public var fusion = true
    public init(fusion: Bool = true) { self.fusion = fusion }
}

/// Everything the compiler derives from a forward graph.
public struct CompiledModel: Sendable {
    public var forward: Graph
    /// The training graph: forward (train mode), loss, backward and optimizer update.
    public var joint: Graph
    public var programs: [PlannedProgram]

    public func dump(_ stage: Stage) -> String {
        switch stage {
        case .graph: return forward.dump(stage: "forward graph")
        case .grad: return joint.dump(stage: "joint graph (forward, loss, backward, optimizer update)")
        case .fused: return programs.map { $0.program.dumpKernels() }.joined(separator: "\n")
        case .plan: return programs.map { $0.program.dumpPlan($0.plan) }.joined(separator: "\n")
        case .c, .binary: return cSource
        }
    }

    public var cSource: String { emitC(programs) }
}

/// Runs the compiler from the evaluated forward graph to planned programs: specialize per execution mode →
/// differentiate → optimizer update → simplify → fuse → schedule → plan. The verifier runs after each pass.
public func compile(_ forward: Graph, options: PipelineOptions = PipelineOptions()) throws -> CompiledModel {
    try forward.verify()
    func finish(_ g: Graph) throws -> Graph {
        var g = g.simplified()
        try g.verify()
        if options.fusion {
            g = g.fusingSoftmaxCrossEntropy()
            try g.verify()
        }
        return g
    }
    let train = try finish(forward.specialized(for: .train).differentiated().withOptimizerUpdate())
    let check = try finish(forward.specialized(for: .gradcheck).differentiated())
    let eval = try finish(forward.specialized(for: .eval))
    var graphs: [ProgramKind: Graph] = [.train: train, .gradcheck: check, .eval: eval, .predict: eval]
    if let bn = try forward.specialized(for: .train).writingBatchStatistics() { graphs[.updateBN] = try finish(bn) }
    let layout = ParamLayout(train)
    let programs = try ProgramKind.allCases.filter { graphs[$0] != nil }.map { kind -> PlannedProgram in
        let p = Program.scheduled(kind, graph: graphs[kind]!, layout: layout, fusion: options.fusion)
        try p.verifySchedule()
        return PlannedProgram(program: p, plan: p.planMemory(elementSize: kind == .gradcheck ? 8 : 4))
    }
    for p in programs where p.plan.arenaBytes / p.plan.elementSize > Limits.maxElements {
        let values = p.plan.arenaBytes / p.plan.elementSize
        throw Diagnostic.error("\(forward.name).swiftnn: the activations of \(p.program.kind) take \(Limits.gigabytes([values])) at the "
                           + "maximum batch of \(p.plan.maxBatch), more than \(Limits.limitDescription); a smaller maxBatch "
                           + "in train(…) lowers it")
    }
    return CompiledModel(forward: forward, joint: train, programs: programs)
}
