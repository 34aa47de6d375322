import NNIR

/// The named indices of a model's C file, so that the code says `P + OFF_0_WEIGHT` and `ctx->hp[HP_LR]`:
/// `OFF_…` is a parameter's offset in floats (in params, grads and each state slot), `SLOT_…` an optimizer
/// state slot, `HP_…` a hyperparameter's index in ctx->hp and HPARAMS.
struct CSymbols {
    /// By `ParamID.index` and `HyperID.index`.
    var offsets: [String] = []
    var hypers: [String] = []
    var slots: [StateSlot: String] = [:]
    static let paramsNumel = "PARAMS_NUMEL"

    init(_ graph: Graph, _ layout: ParamLayout) {
        var taken: Set<String> = [Self.paramsNumel]
        offsets = graph.params.map { unique("OFF_" + cFragment($0.name).uppercased(), in: &taken) }
        for s in layout.slots { slots[s] = unique("SLOT_" + cFragment(s.rawValue).uppercased(), in: &taken) }
        hypers = graph.hypers.map { unique("HP_" + cFragment($0.name).uppercased(), in: &taken) }
    }
}

extension CEmitter {
    /// This emitter with the names of kernel `i`'s function: its parameters, its registers, its accumulators.
    /// The optimizer loop over the whole arena reads `p`, `g` and `state_<slot>` (`arenaUpdate`), so its other
    /// values are named after those (`weight_decay_p`), not after its first parameter.
    func scoped(toKernel i: Int) -> CEmitter {
        var e = self
        let k = program.kernels[i]
        var namer = self.namer
        var s = CScope(reserving: layout.slots.map { "state_\($0.rawValue)" })
        if case .arenaUpdate(let ps) = k.kind {
            var overrides: [ValueID: String] = [:]
            for x in k.body.flatMap({ graph[$0].inputs }) {
                switch program.arenaOperand(x, of: ps[0], in: k.body) {
                case .param?: overrides[x] = "p"
                case .grad?: overrides[x] = "g"
                case .state(let slot)?: overrides[x] = "state_\(slot.rawValue)"
                default: break
                }
            }
            for v in k.body {
                switch graph[v].op {
                case .assign(.param): overrides[v] = "p"
                case .assign(.state(let st)): overrides[v] = "state_\(st.slot.rawValue)"
                default: break
                }
            }
            namer = ValueNamer(graph, overrides: overrides)
            s.names.merge(overrides) { a, _ in a }   // so that the kernel's comment says p, g and state_m
            s.perElement = true
            for v in arenaOperands(k, first: ps[0]).scalars { s.name(v, namer.name(v)) }
        } else {
            for v in reads(k) + writes(k, index: i) { s.name(v, namer.name(v)) }
        }
        if k.kind == .gemm || k.kind == .loop || k.kind.isArenaUpdate {
            for v in k.nodes where !program.isAssign(v) && graph[v].op.info.kind != .reduction { s.register(v, namer.name(v)) }
            for v in k.body where graph[v].op.info.kind == .reduction {
                guard let n = s.names[v] else { continue }
                s.accumulators[v] = s.fresh((graph[v].op == .sumAll ? "acc_" : "part_") + n)
            }
        }
        e.scope = s
        return e
    }

    /// This emitter with the entry point's names, and the statements that carve its buffers: a pointer for every
    /// parameter, gradient, state and activation a kernel call passes (`W0 = P + OFF_0_WEIGHT`,
    /// `h1 = (float *)(A + 0)`), then a name for every scalar local. `functions` are the names it must not hide.
    func scopedToEntry(reserving functions: [String]) -> (emitter: CEmitter, pointers: [CStmt]) {
        var e = self
        var s = CScope(reserving: CScope.entryParameters + functions)
        // The pointers in groups, each in order of first use: parameters, activations, gradients, state.
        var pointers: [(group: Int, stmt: CStmt)] = [], slotBases: [StateSlot: String] = [:]
        func carve(_ st: Storage, _ base: String, _ type: TensorType) -> String {
            if let b = s.buffers[st] { return b }
            let name: String, initial: CExpr
            switch st {
            case .param(let p):
                name = s.fresh(base)
                initial = .id("P") + .id(symbols.offsets[p.index])
            case .grad(let p):
                name = s.fresh(base)
                initial = .id("G") + .id(symbols.offsets[p.index])
            case .state(let sid):
                if slotBases[sid.slot] == nil {
                    let b = s.fresh("S_" + sid.slot.rawValue)
                    slotBases[sid.slot] = b
                    pointers.append((3, .decl("\(real) *", b, .id("S") + .id(symbols.slots[sid.slot]!) * .cast("size_t", .id(CSymbols.paramsNumel)))))
                }
                name = s.fresh(base)
                initial = .id(slotBases[sid.slot]!) + .id(symbols.offsets[sid.param.index])
            default: fatalError("internal compiler error: no pointer for \(st)")
            }
            let group: Int
            switch st {
            case .param: group = 0
            case .grad: group = 2
            default: group = 3
            }
            let constant = f64 && group == 0   // gradcheck's P is const
            pointers.append((group, .noted(.decl((constant ? "const " : "") + "\(real) *", name, initial), "\(type.shape)")))
            s.buffers[st] = name
            return name
        }
        for (i, k) in program.kernels.enumerated() where k.kind != .scalar {
            if case .arenaUpdate(let ps) = k.kind {
                let p = ps[0], t = TensorType(.f32, Shape(graph[p].shape))
                _ = carve(.param(p), graph.shortName(p), t)
                _ = carve(.grad(p), "d" + graph.shortName(p), t)
                for slot in arenaOperands(k, first: p).slots {
                    _ = carve(.state(StateID(slot, of: p)), "\(slot.rawValue)_\(graph.shortName(p))", t)
                }
                continue
            }
            for v in reads(k) + writes(k, index: i) {
                guard let st = plan.storage[v] else { continue }
                switch st {
                case .param(let p): s.names[v] = carve(st, graph.shortName(p), graph.type(v))
                case .grad(let p): s.names[v] = carve(st, "d" + graph.shortName(p), graph.type(v))
                case .state(let sid): s.names[v] = carve(st, "\(sid.slot.rawValue)_\(graph.shortName(sid.param))", graph.type(v))
                case .arena(let off) where s.names[v] == nil:   // a pointer per value, where buffers share bytes
                    let t = graph.type(v), elem = t.dtype == .i32 ? "int32_t" : real
                    s.name(v, namer.name(v))
                    pointers.append((1, .noted(.decl("\(elem) *", s.names[v]!, .cast("\(elem) *", .id("A") + .int(off))), "\(t.shape)")))
                default: break
                }
            }
        }
        for v in graph.ids where plan.storage[v] == .local { s.name(v, namer.name(v)) }
        e.scope = s
        return (e, pointers.enumerated().sorted { ($0.element.group, $0.offset) < ($1.element.group, $1.offset) }.map(\.element.stmt))
    }

    /// The pointer the entry point carved for a buffer.
    func buffer(_ st: Storage) -> CExpr {
        guard let b = scope.buffers[st] else { fatalError("internal compiler error: no pointer for \(st)") }
        return .id(b)
    }
}

extension Kernel.Kind {
    var isArenaUpdate: Bool { if case .arenaUpdate = self { return true } else { return false } }
}
