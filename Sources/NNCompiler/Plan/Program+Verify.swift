import NNIR

extension Program {
    /// Checks the schedule the fusion passes produced: every node of the program is computed by exactly one
    /// kernel (or is a source), every operand is ready before the node that reads it (a source, an earlier
    /// kernel, or earlier in the same kernel and not a reduction of it), and no parameter or state buffer is
    /// overwritten before the last kernel that reads its old value. Throws the first violation.
    public func verifySchedule() throws {
        let live = graph.live(from: roots)
        var at: [ValueID: (kernel: Int, position: Int)] = [:]
        for (i, k) in kernels.enumerated() {
            for (p, v) in k.nodes.enumerated() {
                if at[v] != nil { throw Diagnostic.error("\(graph.line(v)) is computed by two kernels") }
                at[v] = (i, p)
            }
        }
        for v in live where graph[v].op.info.kind != .source && at[v] == nil {
            // A merged optimizer loop computes the updates of every parameter from the first one's nodes.
            guard isMergedUpdate(v) else { throw Diagnostic.error("\(graph.line(v)) is in no kernel") }
        }
        for (i, k) in kernels.enumerated() {
            for (p, v) in k.nodes.enumerated() {
                for x in graph[v].inputs {
                    guard let (j, q) = at[x] else { continue }   // a source
                    let reduction = graph[x].op.info.kind == .reduction
                    if j > i || (j == i && (q >= p || reduction)) {
                        throw Diagnostic.error("\(k.name): \(graph.line(v)) reads \(x) before it is ready")
                    }
                }
            }
        }
        try verifyNoEarlyOverwrite(at)
    }

    /// An `assign` to a buffer must come no earlier than every kernel that reads the buffer's old value.
    private func verifyNoEarlyOverwrite(_ at: [ValueID: (kernel: Int, position: Int)]) throws {
        var lastRead: [Op: Int] = [:]
        for (i, k) in kernels.enumerated() {
            for v in k.nodes {
                for x in graph[v].inputs {
                    if case .param = graph[x].op { lastRead[graph[x].op] = max(lastRead[graph[x].op] ?? i, i) }
                    if case .state = graph[x].op { lastRead[graph[x].op] = max(lastRead[graph[x].op] ?? i, i) }
                }
            }
        }
        for (i, k) in kernels.enumerated() {
            for v in k.nodes {
                guard case .assign(let t) = graph[v].op else { continue }
                let target: Op
                switch t {
                case .param(let p): target = .param(p)
                case .state(let s): target = .state(s)
                }
                if let r = lastRead[target], r > i {
                    throw Diagnostic.error("\(k.name) overwrites \(graph.name(of: t)) before \(kernels[r].name) reads it")
                }
            }
        }
    }

    private func isMergedUpdate(_ v: ValueID) -> Bool {
        kernels.contains { if case .arenaUpdate = $0.kind { return true } else { return false } }
            && graph.optimizerOnlyNodes().contains(v)
    }
}
