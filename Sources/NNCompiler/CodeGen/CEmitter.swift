import NNIR

/// Turns one scheduled, planned program into C functions: one per kernel and one entry point.
struct CEmitter {
    let program: Program
    let plan: MemoryPlan
    let f64: Bool
    let stored: Set<ValueID>
    /// Kernels that run side by side (see CEmitter+Pairs): first → second, and the smallest size that pairs.
    private(set) var pairs: [Int: Int] = [:]
    let pairMin: Int
    /// The model's named indices: parameter offsets, state slots, hyperparameters.
    let symbols: CSymbols
    /// Each kernel's C function where it is not its `name` (`CModule` prefixes the program's kind where another
    /// program has a different kernel of the same name).
    var functionNames: [Int: String] = [:]
    /// The C names of the function being emitted: a kernel's (`scoped(toKernel:)`) or the entry point's.
    var scope = CScope()
    /// The values' names, before each function makes them unique.
    let namer: ValueNamer
    /// `nncc compile --mpi`: train_step calls the runtime's allreduce hooks (CEmitter+Dist).
    var mpi = false
    /// On for the train program's instrumented twin, `train_step_monitor` (`nncc compile --monitor`): every
    /// forward activation is handed to the runtime's monitor right after the kernel that writes it (CEmitter+Monitor).
    var monitor = false

    init(_ program: Program, _ plan: MemoryPlan, symbols: CSymbols? = nil, pairMin: Int = CEmitter.defaultPairMin) {
        self.program = program
        self.plan = plan
        self.f64 = program.kind == .gradcheck
        self.stored = program.materialized()
        self.pairMin = pairMin
        self.symbols = symbols ?? CSymbols(program.graph, program.layout)
        self.namer = ValueNamer(program.graph)
        self.pairs = findPairs()
    }

    var graph: Graph { program.graph }
    var layout: ParamLayout { program.layout }
    var real: String { f64 ? "double" : "float" }
    func fn(_ name: String) -> String { f64 ? name : name + "f" }
    func lit(_ v: Double) -> CExpr { .num(v, float: !f64) }
    func kernelName(_ i: Int) -> String { functionNames[i] ?? program.kernels[i].name }

    /// The C name of a value in the current scope: a register of a kernel's loop, a pointer (a kernel parameter
    /// or the entry point's local), a scalar.
    func reg(_ v: ValueID) -> String { scope.registers[v] ?? name(v) }
    func ptr(_ v: ValueID) -> String { name(v) }
    func sca(_ v: ValueID) -> String { name(v) }
    func name(_ v: ValueID) -> String {
        guard let n = scope.names[v] else { fatalError("internal compiler error: \(graph.line(v)) has no C name here") }
        return n
    }

    func shapeNote(_ v: ValueID) -> String { "\(graph.type(v).shape)" }

    /// A value's C declaration as a kernel parameter.
    func param(_ v: ValueID, writes: Bool) -> CParam {
        let t = graph.type(v)
        if plan.storage[v] == .local { return writes ? CParam(type: "double *", name: sca(v)) : CParam(type: "\(real) ", name: sca(v)) }
        if let pooled = plan.windowBytes[v] {   // a max pooling's window bytes (nnrt_window.h)
            return CParam(type: (writes ? "" : "const ") + "unsigned char *", name: ptr(v), note: "\(pooled.shape) window bytes")
        }
        let elem = t.dtype == .i32 ? "int32_t" : real
        return CParam(type: (writes ? "" : "const ") + "\(elem) *", name: ptr(v), note: "\(t.shape)")
    }

    /// The argument passed for a value at the call site in the entry point: the pointer the entry point carves
    /// for its buffer (`entryScope`), or its scalar local.
    func argument(_ v: ValueID, writes: Bool) -> CExpr {
        switch plan.storage[v] ?? .register {
        case .input(let name): return .id(name)
        case .output: return .id("out")
        case .local: return writes ? .prefix("&", .id(sca(v))) : .id(sca(v))
        case .param, .grad, .state, .arena: return .id(ptr(v))
        case .register: fatalError("internal compiler error: \(v) has no storage")
        }
    }

    /// The operands a kernel reads from outside itself, in first-use order.
    func reads(_ k: Kernel) -> [ValueID] {
        let inside = Set(k.nodes)
        var seen = Set<ValueID>(), out: [ValueID] = []
        for v in k.nodes { for x in graph[v].inputs where !inside.contains(x) && seen.insert(x).inserted { out.append(x) } }
        return out
    }

    /// The values a kernel writes to memory.
    func writes(_ k: Kernel, index i: Int) -> [ValueID] {
        var out = k.nodes.filter { stored.contains($0) || program.isAssign($0) }
        if let t = plan.gemmTarget[i], !out.contains(t) { out.insert(t, at: 0) }
        return out
    }

    /// The scalar C expression of a node whose operands are all scalars (computed in double, once per call).
    func scalarExpr(_ v: ValueID) -> CExpr {
        let n = graph[v]
        let x = n.inputs.map { CExpr.id(sca($0)) }
        switch n.op {
        case .hyper(let h):
            let i = CExpr.id(symbols.hypers[h.index])
            return f64 ? .dot(.index(.id("HPARAMS"), i), "value") : .index(.member(.id("ctx"), "hp"), i)
        case .constant(let c): return .num(c, float: false)
        case .stepCount: return f64 ? .num(1, float: false) : .cast("double", .member(.id("ctx"), "step"))
        case .epochCount: return f64 ? .num(0, float: false) : .cast("double", .member(.id("ctx"), "epoch"))
        case .lrOverride: return f64 ? .num(0, float: false) : .member(.id("ctx"), "lr_override")
        case .stepsPerEpoch: return f64 ? .num(1, float: false) : .cast("double", .member(.id("ctx"), "steps_per_epoch"))
        case .batchSize: return .cast("double", .id("n"))
        case .unary(let f): return unaryExpr(f, x[0], double: true)
        case .binary(let f): return binaryExpr(f, x[0], x[1], double: true)
        case .assign: return x[0]
        default: fatalError("internal compiler error: \(n.op.mnemonic) is not a scalar op")
        }
    }

    func unaryExpr(_ f: UnaryFn, _ a: CExpr, double: Bool = false) -> CExpr {
        let name = { (s: String) in double || self.f64 ? s : s + "f" }
        let zero = double ? CExpr.num(0, float: false) : lit(0), one = double ? CExpr.num(1, float: false) : lit(1)
        switch f {
        case .neg: return .prefix("-", a)
        case .relu: return .ternary(.binary(">", a, zero), a, zero)
        case .step: return .ternary(.binary(">", a, zero), one, zero)
        case .sigmoid: return one / (one + .call(name("exp"), [.prefix("-", a)]))
        case .tanh: return .call(name("tanh"), [a])
        case .exp: return .call(name("exp"), [a])
        case .log: return .call(name("log"), [a])
        case .sqrt: return .call(name("sqrt"), [a])
        case .square: return a * a
        case .reciprocal: return one / a
        case .cos: return .call(name("cos"), [a])
        case .sin: return .call(name("sin"), [a])
        case .floor: return .call(name("floor"), [a])
        case .abs: return .call(name("fabs"), [a])
        case .sign: return .ternary(.binary(">", a, zero), one, .ternary(.binary("<", a, zero), .prefix("-", one), zero))
        case .erf: return .call(name("erf"), [a])
        case .softplus:   // max(x, 0) + log1p(e^(−|x|)): no overflow for large |x|
            return .ternary(.binary(">", a, zero), a, zero) + .call(name("log1p"), [.call(name("exp"), [.prefix("-", .call(name("fabs"), [a]))])])
        }
    }

    func binaryExpr(_ f: BinaryFn, _ a: CExpr, _ b: CExpr, double: Bool = false) -> CExpr {
        switch f {
        case .add: return a + b
        case .sub: return a - b
        case .mul: return a * b
        case .div: return a / b
        case .pow: return .call(double || f64 ? "pow" : "powf", [a, b])
        case .min: return .call(double || f64 ? "fmin" : "fminf", [a, b])
        case .max: return .call(double || f64 ? "fmax" : "fmaxf", [a, b])
        }
    }
}

/// How a kernel divides its work between the two threads: the axis, and where the second half starts and ends
/// (a C expression: a batch splits at run time).
struct Split {
    enum Axis: String { case rows, columns, elements }
    var axis: Axis
    /// The extent being split: chunk c covers [c·size, min((c+1)·size, end)).
    var end: CExpr
    var size: CExpr
    /// How many chunks nnrt_par_chunks runs (a chunk past `end` is empty).
    var count: Int

    /// The kernel's range parameters.
    var lo: String { axis == .columns ? "j0" : "i0" }
    var hi: String { axis == .columns ? "j1" : "i1" }

    /// At most this many chunks: the two threads start at opposite ends, so with an even speed each runs the
    /// half it would run with a fixed split, and a thread slowed down (the machine is shared) gives up a chunk
    /// or two instead of holding up the other.
    static let chunks = 8

    /// A fixed extent n in chunks of a multiple of `grain` (whole tiles of the GEMM kernels, whole cache lines).
    static func fixed(_ axis: Axis, _ n: Int, grain: Int) -> Split {
        let size = ((n + chunks - 1) / chunks + grain - 1) / grain * grain
        return Split(axis: axis, end: .int(n), size: .int(size), count: (n + size - 1) / size)
    }

    /// The batch's n rows at run time, in chunks of a multiple of 4 rows.
    static var batchRows: Split {
        let n = CExpr.member(.id("a"), "n")
        let size = ((n + .int(chunks - 1)) / .int(chunks) + .int(3)) / .int(4) * .int(4)
        return Split(axis: .rows, end: n, size: size, count: chunks)
    }
}
