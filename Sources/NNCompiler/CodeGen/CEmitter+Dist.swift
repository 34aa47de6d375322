import NNIR

/// `nncc compile --mpi`: the hooks train_step calls so that the runtime (runtime/dist.c) can average the gradients
/// over the ranks while backward still runs. After the last kernel that touches a parameter's gradient, it calls
/// `nnrt_dist_grad_ready(ctx, OFF_p, numel)`, and the runtime starts the allreduce of that parameter's bucket once
/// the bucket is complete; before the optimizer update, `nnrt_dist_grads_wait(ctx)`, so that the update sees the
/// averaged gradients. Without `--mpi` nothing is emitted, and the C is byte for byte the one-process trainer's.
struct DistHooks {
    /// The parameters whose gradients are final after the call of the kernel (a pair: its first) at each index.
    var ready: [Int: [ParamID]] = [:]
    /// The kernel index before whose call the wait goes: the first one that writes a trained parameter or the
    /// optimizer's state (the update), or past the end.
    var waitBefore: Int
}

extension CEmitter {
    /// Where train_step reports each gradient final and where it waits for the allreduce; nil for other programs.
    func distHooks() -> DistHooks? {
        guard program.kind == .train else { return nil }
        let kernels = program.kernels
        func writesUpdate(_ i: Int) -> Bool {
            writes(kernels[i], index: i).contains { v in
                switch plan.storage[v] {
                case .param(let p)?: return graph[p].trainable
                case .state?: return true
                default:
                    if case .assign(let b) = graph[v].op, case .param(let p) = b { return graph[p].trainable }
                    if case .assign(.state) = graph[v].op { return true }
                    return false
                }
            }
        }
        let waitBefore = kernels.indices.first(where: writesUpdate) ?? kernels.count
        let firstOfPair = Dictionary(pairs.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
        var last: [ParamID: Int] = [:]   // the last kernel before the update that reads or writes each gradient
        for i in 0..<waitBefore {
            for v in reads(kernels[i]) + writes(kernels[i], index: i) {
                if case .grad(let p)? = plan.storage[v] { last[p] = firstOfPair[i] ?? i }
            }
        }
        var hooks = DistHooks(waitBefore: waitBefore)
        for (p, i) in last.sorted(by: { $0.key < $1.key }) where graph[p].trainable { hooks.ready[i, default: []].append(p) }
        return hooks
    }

    /// `nnrt_dist_grad_ready(ctx, OFF_p, numel);` for each parameter whose gradient the call at `i` finished.
    func gradReadyCalls(_ hooks: DistHooks?, after i: Int) -> [CStmt] {
        (hooks?.ready[i] ?? []).map { p in
            .expr(.call("nnrt_dist_grad_ready", [.id("ctx"), .id(symbols.offsets[p.index]), .int(graph[p].count)]))
        }
    }

    /// `nnrt_dist_grads_wait(ctx);` when the kernel at `i` is the first of the update.
    func gradsWaitCall(_ hooks: DistHooks?, before i: Int) -> [CStmt] {
        hooks?.waitBefore == i ? [.expr(.call("nnrt_dist_grads_wait", [.id("ctx")]))] : []
    }
}
