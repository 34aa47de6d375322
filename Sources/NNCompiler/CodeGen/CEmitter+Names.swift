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
        var c = EntryPointers(e: self, scope: CScope(reserving: CScope.entryParameters + functions))
        for (i, k) in program.kernels.enumerated() where k.kind != .scalar {
            if case .arenaUpdate(let ps) = k.kind {   // the loop over the whole arena starts at its first parameter
                let shape = Shape(graph[ps[0]].shape)
                _ = c.pointer(to: .param(ps[0]), shape: shape)
                _ = c.pointer(to: .grad(ps[0]), shape: shape)
                for slot in arenaOperands(k, first: ps[0]).slots { _ = c.pointer(to: .state(StateID(slot, of: ps[0])), shape: shape) }
                continue
            }
            for v in reads(k) + writes(k, index: i) {
                switch plan.storage[v] {
                case .param?, .grad?, .state?: c.scope.names[v] = c.pointer(to: plan.storage[v]!, shape: graph.type(v).shape)
                case .arena(let off)?: c.pointer(to: v, at: off)
                default: break
                }
            }
        }
        for v in graph.ids where plan.storage[v] == .local { c.scope.name(v, namer.name(v)) }
        var e = self
        e.scope = c.scope
        return (e, c.statements)
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

/// The entry point's pointers into its arenas, named as the values they hold (`W0`, `dW0`, `m_W0`, `h1`) and
/// declared in groups, each in the order the kernels first pass them: parameters, activations, gradients, state.
private struct EntryPointers {
    let e: CEmitter
    var scope: CScope
    private var declarations: [(group: Int, stmt: CStmt)] = []
    private var slotBases: [StateSlot: String] = [:]

    init(e: CEmitter, scope: CScope) {
        self.e = e
        self.scope = scope
    }

    var statements: [CStmt] {
        declarations.enumerated().sorted { ($0.element.group, $0.offset) < ($1.element.group, $1.offset) }.map(\.element.stmt)
    }

    /// The pointer to a parameter, gradient or state buffer: `W0 = P + OFF_0_WEIGHT` (const in gradcheck, whose
    /// P is), `dW0 = G + OFF_0_WEIGHT`, `m_W0 = S_m + OFF_0_WEIGHT` after `S_m = S + SLOT_M · PARAMS_NUMEL`.
    mutating func pointer(to st: Storage, shape: Shape) -> String {
        if let b = scope.buffers[st] { return b }
        let g = e.graph, real = e.real, offsets = e.symbols.offsets, off = { (p: ParamID) in CExpr.id(offsets[p.index]) }
        let (base, group, start): (String, Int, CExpr)
        switch st {
        case .param(let p): (base, group, start) = (g.shortName(p), 0, .id("P") + off(p))
        case .grad(let p): (base, group, start) = ("d" + g.shortName(p), 2, .id("G") + off(p))
        case .state(let s): (base, group, start) = ("\(s.slot.rawValue)_\(g.shortName(s.param))", 3, .id(slotBase(s.slot)) + off(s.param))
        default: fatalError("internal compiler error: no pointer for \(st)")
        }
        let name = scope.fresh(base)
        let type = (e.f64 && group == 0 ? "const " : "") + "\(real) *"
        declarations.append((group, .noted(.decl(type, name, start), "\(shape)")))
        scope.buffers[st] = name
        return name
    }

    /// A value's pointer into the activation arena: one per value, where values share bytes.
    mutating func pointer(to v: ValueID, at offset: Int) {
        guard scope.names[v] == nil else { return }
        let t = e.graph.type(v), pooled = e.plan.windowBytes[v]   // a max pooling's window bytes (nnrt_window.h)
        let elem = pooled != nil ? "unsigned char" : t.dtype == .i32 ? "int32_t" : e.real
        let note = pooled.map { "\($0.shape) window bytes" } ?? "\(t.shape)"
        scope.name(v, e.namer.name(v))
        declarations.append((1, .noted(.decl("\(elem) *", scope.names[v]!, .cast("\(elem) *", .id("A") + .int(offset))), note)))
    }

    private mutating func slotBase(_ slot: StateSlot) -> String {
        if let b = slotBases[slot] { return b }
        let b = scope.fresh("S_" + slot.rawValue)
        slotBases[slot] = b
        let start = CExpr.id("S") + .id(e.symbols.slots[slot]!) * .cast("size_t", .id(CSymbols.paramsNumel))
        declarations.append((3, .decl("\(e.real) *", b, start)))
        return b
    }
}
