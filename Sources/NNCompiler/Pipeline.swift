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

/// Runs the compiler from the evaluated forward graph to planned programs:
/// differentiate → optimizer update → simplify → fuse → schedule → plan. The verifier runs after each pass.
public func compile(_ forward: Graph, options: PipelineOptions = PipelineOptions()) throws -> CompiledModel {
    try forward.verify()
    var joint = try forward.differentiated().withOptimizerUpdate().simplified()
    try joint.verify()
    if options.fusion {
        joint = joint.fusingSoftmaxCrossEntropy()
        try joint.verify()
    }
    let programs = ProgramKind.allCases.map { kind -> PlannedProgram in
        let p = Program.scheduled(kind, graph: joint, fusion: options.fusion)
        return PlannedProgram(program: p, plan: p.planMemory(elementSize: kind == .gradcheck ? 8 : 4))
    }
    return CompiledModel(forward: forward, joint: joint, programs: programs)
}
