import NNIR

/// The stages of `nncc compile`, each with a text dump (`--emit=<stage>`).
public enum Stage: String, CaseIterable, Sendable {
    case graph, grad, fused, plan, c, binary
    /// Not a dump: the inference library's folder (`Driver.writeLibrary`); its dump is the library's C.
    case library
}

public struct PipelineOptions: Sendable {
    /// Off gives the unfused reference path (`--no-fusion`), for bisecting a miscompile.
    public var fusion = true
    /// `--mpi`: a trainer for data-parallel training under mpirun (docs/distributed.md).
    public var mpi = false
    /// On emits the instrumented train step as well (`--monitor`, see CEmitter+Monitor); off leaves the C as it was.
    public var monitor = false
    public init(fusion: Bool = true, mpi: Bool = false, monitor: Bool = false) {
        self.fusion = fusion
        self.mpi = mpi
        self.monitor = monitor
    }
}

/// Everything the compiler derives from a forward graph.
public struct CompiledModel: Sendable {
    public var forward: Graph
    /// The training graph: forward (train mode), loss, backward and optimizer update.
    public var joint: Graph
    public var programs: [PlannedProgram]
    /// Built for data-parallel training (`--mpi`): train_step calls the runtime's allreduce hooks.
    public var mpi = false
    /// `--monitor`: the C has `train_step_monitor` too.
    public var monitor = false

    public func dump(_ stage: Stage) -> String {
        switch stage {
        case .graph: return forward.dump(stage: "forward graph")
        case .grad: return joint.dump(stage: "joint graph (forward, loss, backward, optimizer update)")
        case .fused: return programs.map { $0.program.dumpKernels() }.joined(separator: "\n")
        case .plan: return programs.map { $0.program.dumpPlan($0.plan) }.joined(separator: "\n")
        case .c, .binary: return cSource
        case .library: return (try? Library(self, name: forward.name))?.cSource ?? ""
        }
    }

    public var cSource: String { emitC(programs, mpi: mpi, monitor: monitor) }
}

/// Runs the compiler from the evaluated forward graph to planned programs: specialize per execution mode →
/// differentiate → optimizer update → simplify → fuse → schedule → plan. The verifier runs after each pass. The
/// input-gradient program (saliency, maximize) is the eval-mode graph differentiated with respect to x, planned for
/// at most `Graph.inputGradientMaxBatch` samples.
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
    let trainForward = forward.specialized(for: .train)
    let train = try finish(trainForward.differentiated().withOptimizerUpdate())
    let check = try finish(forward.specialized(for: .gradcheck).differentiated())
    let eval = try finish(forward.specialized(for: .eval))
    var inputGrad = try finish(forward.specialized(for: .eval).inputGradient())
    inputGrad.config.maxBatch = min(inputGrad.config.maxBatch, Graph.inputGradientMaxBatch)
    var graphs: [ProgramKind: Graph] = [.train: train, .gradcheck: check, .eval: eval, .predict: eval, .inputGrad: inputGrad]
    // A classifier trained with cross-entropy also gets a step against soft targets, for mixup and CutMix (not a
    // full-batch L-BFGS model, whose runtime refuses per-batch data changes such as --augment and --mixup).
    if !trainForward.config.optimizer.isFullBatch, let soft = trainForward.withSoftLabels() { graphs[.trainMixed] = try finish(soft.differentiated().withOptimizerUpdate()) }
    // A model with BatchNorm's running statistics gets SWA's update_bn pass.
    if let bn = try forward.specialized(for: .train).writingBatchStatistics() { graphs[.updateBN] = try finish(bn) }
    let layout = ParamLayout(train)
    let programs = try ProgramKind.allCases.compactMap { kind -> PlannedProgram? in
        guard let g = graphs[kind] else { return nil }
        let p = Program.scheduled(kind, graph: g, layout: layout, fusion: options.fusion)
        try p.verifySchedule()
        return PlannedProgram(program: p, plan: p.planMemory(elementSize: kind == .gradcheck ? 8 : 4))
    }
    for p in programs where p.plan.arenaBytes / p.plan.elementSize > Limits.maxElements {
        let values = p.plan.arenaBytes / p.plan.elementSize
        throw Diagnostic.error("\(forward.name).swiftnn: the activations of \(p.program.kind) take \(Limits.gigabytes([values])) at the "
                           + "maximum batch of \(p.plan.maxBatch), more than \(Limits.limitDescription); a smaller maxBatch "
                           + "in train(…) lowers it")
    }
    return CompiledModel(forward: forward, joint: train, programs: programs, mpi: options.mpi, monitor: options.monitor)
}
