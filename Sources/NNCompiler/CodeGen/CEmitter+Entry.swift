import NNIR

extension CEmitter {
    /// The program's entry point: pointers into the arenas, scalar locals, then the kernel calls in order.
    func entryFunction() -> CFunction {
        let (e, pointers) = scopedToEntry(reserving: functionNamesCalled())
        return e.entryFunction(carving: pointers)
    }

    /// The functions the entry point calls, which its locals must not hide.
    func functionNamesCalled() -> [String] {
        program.kernels.indices.flatMap { [kernelName($0), kernelName($0) + "_chunk"] }
            + pairs.map { pairName($0.key, $0.value) } + ["train_step", "eval_batch", "predict", "loss_grad_f64", "train_mixed_step", "update_bn"]
            + (monitor ? ["train_step_monitor"] : [])
            + (program.kind == .inputGrad ? ["input_grad", "seeds"] + graph.seedInputs().map(\.name) : [])
    }

    private func entryFunction(carving pointers: [CStmt]) -> CFunction {
        var body: [CStmt] = []
        switch program.kind {
        case .train, .eval, .predict, .trainMixed, .updateBN:
            body.append(.decl("float *", "P", .member(.id("ctx"), "params")))
            if program.kind.updates {
                body += [.decl("float *", "G", .member(.id("ctx"), "grads")), .decl("float *", "S", .member(.id("ctx"), "state"))]
            }
            body.append(.decl("char *", "A", .cast("char *", .member(.id("ctx"), "arena"))))
        case .gradcheck:
            body.append(.decl("char *", "A", .cast("char *", .id("arena"))))
        case .inputGrad:
            body.append(.decl("float *", "P", .member(.id("ctx"), "params")))
            body.append(.decl("char *", "A", .cast("char *", .id("arena"))))
            for (k, s) in graph.seedInputs().enumerated() {
                body.append(.noted(.decl("const float *", s.name, .index(.id("seeds"), .int(k))), "\(graph.type(s.seed).shape)"))
            }
        }
        if let y = graph.live(from: program.roots).first(where: { graph[$0].op == .input("y") }) {
            let t = graph[y].type.dtype == .i32 ? "int32_t" : real   // soft targets (train_mixed) are dense
            body.append(.decl("const \(t) *", "y", .cast("const \(t) *", .id("y_"))))
        }
        body += pointers
        // Scalar sources the program uses, then each kernel or scalar statement in schedule order.
        let live = graph.live(from: program.roots)
        for v in graph.ids where live.contains(v) && plan.storage[v] == .local && graph[v].op.info.kind == .source {
            body.append(.decl("const double", sca(v), scalarExpr(v)))
        }
        func scalar(_ k: Kernel) -> CStmt { .decl("const double", sca(k.body[0]), scalarExpr(k.body[0])) }
        let hooks = mpi ? distHooks() : nil   // --mpi: train_step's allreduce hooks (CEmitter+Dist)
        var i = 0
        while i < program.kernels.count {
            let k = program.kernels[i]
            body += gradsWaitCall(hooks, before: i)
            if k.kind == .scalar {
                body.append(scalar(k))
                i += 1
                continue
            }
            guard let j = pairs[i] else {
                for v in writes(k, index: i) where plan.storage[v] == .local { body.append(.decl("double", sca(v), nil)) }
                body.append(profiled(kernelCall(i), k, index: i))
                body += gradReadyCalls(hooks, after: i)
                body += monitorCalls(after: i)
                i += 1
                continue
            }
            // A pair: the scalars between its kernels that do not use the first one's results come before it
            // (the second kernel may read them), the others after.
            let fromFirst = results(of: i, before: j)
            let between = program.kernels[(i + 1)..<j], after = between.filter { $0.nodes.contains(where: fromFirst.contains) }
            body += between.filter { !$0.nodes.contains(where: fromFirst.contains) }.map(scalar)
            for (x, kx) in [(i, k), (j, program.kernels[j])] {
                for v in writes(kx, index: x) where plan.storage[v] == .local { body.append(.decl("double", sca(v), nil)) }
            }
            body.append(pairCall(i, j))
            body += gradReadyCalls(hooks, after: i)
            body += monitorCalls(after: i) + monitorCalls(after: j)
            body += after.map(scalar)
            i = j + 1
        }
        body += gradsWaitCall(hooks, before: program.kernels.count)
        let loss = program.kind == .predict || program.kind == .updateBN ? nil
            : graph.outputs[program.kind == .inputGrad ? .score : .loss].map { CExpr.id(sca($0)) }
        switch program.kind {
        case .train, .trainMixed:
            for p in graph.paramIDs where graph[p].counter {   // num_batches_tracked
                body.append(.assign(.index(.id("P"), .id(symbols.offsets[p.index])), "+=", lit(1)))
            }
            body.append(.assign(.member(.id("ctx"), "lr"), "=", .id(sca(graph.outputs[.learningRate]!))))
            body.append(.ret(.cast("float", loss!)))
            if monitor { return monitorFunction(body) }
            let mixed = program.kind == .trainMixed
            let what = graph.config.optimizer.isFullBatch
                ? "forward, loss and backward; runtime/lbfgs.c updates the weights from the gradients"
                : "forward, loss, backward and the \(graph.config.optimizer.name) update"
            return CFunction(comment: ["One training step: \(what)"
                                       + (mixed ? ", against soft targets y (n, \(graph.config.outputDim)) (mixup, CutMix)." : ".")],
                             signature: "static float \(mixed ? "train_mixed_step" : "train_step")(nnrt_ctx *ctx, int n, const float *x, const void *y_)",
                             body: body)
        case .eval:
            body.append(.ret(.cast("float", loss!)))
            return CFunction(comment: ["The loss of a batch and the model's outputs, without training."],
                             signature: "static float eval_batch(nnrt_ctx *ctx, int n, const float *x, const void *y_, float *out)", body: body)
        case .predict:
            return CFunction(comment: ["The model's outputs (n, \(graph.config.outputDim))."],
                             signature: "static void predict(nnrt_ctx *ctx, int n, const float *x, float *out)", body: body)
        case .inputGrad:
            body.append(.ret(.cast("float", loss!)))
            let layers = graph.seedInputs().map(\.layer.name).joined(separator: ", ")
            return CFunction(comment: ["In eval mode, score = Σ seed·h over the layer outputs \(layers) (seeds[k] is (n, layer k's shape)),",
                                       "returned, and its gradient with respect to x (n, \(graph.config.inputDim)) into out, for saliency and maximize.",
                                       "arena holds input_grad_arena_bytes; n ≤ \(graph.config.maxBatch)."],
                             signature: "static float input_grad(nnrt_ctx *ctx, void *arena, int n, const float *x, const float *const *seeds, float *out)",
                             body: body)
        case .updateBN:
            return CFunction(comment: ["A forward pass in training mode that writes each BatchNorm's batch mean and unbiased variance",
                                       "into its running buffers (the runtime averages them over the batches: SWA's update_bn)."],
                             signature: "static void update_bn(nnrt_ctx *ctx, int n, const float *x)", body: body)
        case .gradcheck:
            body.append(.ret(loss!))
            return CFunction(comment: ["Float64 twin for gradcheck: the loss at params P and its gradient into G."],
                             signature: "static double loss_grad_f64(const double *P, double *G, void *arena, int n, const double *x, const void *y_)",
                             body: body)
        }
    }

    /// A kernel call timed under --profile by its kind, and in train_step also by itself (NNRT_PROF_AT with its
    /// place among `timedCalls`); the float64 gradcheck twin has no context to time into.
    func profiled(_ call: CStmt, _ k: Kernel, index i: Int) -> CStmt {
        if case .block(let stmts) = call, let last = stmts.last {   // a split kernel: time its nnrt_par_chunks call
            return .block(stmts.dropLast() + [profiled(last, k, index: i)])
        }
        guard program.kind != .gradcheck, case .expr(let e) = call else { return call }
        guard k.kind != .scalar else { return call }
        if let id = timedCalls().ids[i] { return .expr(.call("NNRT_PROF_AT", [.id("ctx"), .id(profileKind(k)), .int(id), e])) }
        return .expr(.call("NNRT_PROF", [.id("ctx"), .id(profileKind(k)), e]))
    }

    /// train_step's timed calls in order, for --profile's per-kernel table: every kernel but the scalars, a pair
    /// as one call. `ids` maps a kernel's index (a pair's first) to its place in `names`.
    func timedCalls() -> (ids: [Int: Int], names: [String]) {
        guard program.kind == .train else { return ([:], []) }
        var ids: [Int: Int] = [:], names: [String] = []
        let seconds = Set(pairs.values)
        for (i, k) in program.kernels.enumerated() where k.kind != .scalar && !seconds.contains(i) {
            ids[i] = names.count
            names.append(pairs[i].map { "\(k.name) + \(program.kernels[$0].name)" } ?? k.name)
        }
        return (ids, names)
    }

    /// The kernels and the entry point of this program.
    func functions() -> [CTopLevel] { kernelGroups().flatMap(\.items) + [.function(entryFunction())] }

    /// Each kernel's function with its wrappers (split, and a pair that ends with it), named by the function,
    /// for `CModule` to emit a kernel that several programs share once. Scalar kernels have none.
    func kernelGroups() -> [(kernel: Int, name: String, items: [CTopLevel])] {
        program.kernels.indices.compactMap { i in
            let e = scoped(toKernel: i)
            guard let f = e.kernelFunction(i) else { return nil }
            let pair = pairs.first { $0.value == i }.map { pairWrapper($0.key, i) } ?? []
            return (i, kernelName(i), [.function(f)] + e.splitWrapper(i) + pair)
        }
    }
}
