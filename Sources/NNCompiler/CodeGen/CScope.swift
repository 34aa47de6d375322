import NNIR

/// The C names of the values in one generated function, each unique there: a kernel's parameters and the
/// registers of its loop, or the entry point's buffer pointers and scalar locals. Values are named after
/// what they are (`ValueNamer`: `h1`, `dW0`, `step_h1`); a register of a value the kernel also stores is
/// `h1_r`, next to the pointer `h1`.
struct CScope {
    /// Kernel parameters (pointers and scalars), or the entry point's locals.
    var names: [ValueID: String] = [:]
    /// A kernel's per-element registers.
    var registers: [ValueID: String] = [:]
    /// A reduction's local accumulator (`acc_loss`) or partial sum of its innermost loop (`part_db0`).
    var accumulators: [ValueID: String] = [:]
    /// The entry point's pointer to each parameter, gradient and state buffer (`W0`, `dW0`, `m_W0`).
    var buffers: [Storage: String] = [:]
    /// The function computes one element of arrays whose shapes its names do not tell (the optimizer loop over
    /// the whole parameter arena), so its comment leaves the shapes out.
    var perElement = false
    private var taken: Set<String>

    init(reserving extra: [String] = []) { taken = CScope.reserved.union(extra) }

    /// A name for `base` that nothing in the function has yet.
    mutating func fresh(_ base: String) -> String { unique(base, in: &taken) }

    mutating func name(_ v: ValueID, _ base: String) {
        if names[v] == nil { names[v] = fresh(base) }
    }

    /// A register keeps the value's name unless the kernel has a parameter of that name (then `h1_r`).
    mutating func register(_ v: ValueID, _ base: String) {
        if registers[v] == nil { registers[v] = fresh(taken.contains(base) ? base + "_r" : base) }
    }

    /// The entry point's parameters besides `ctx`, `n` and `out`: the batch's inputs.
    static let entryParameters = ["x", "y", "y_"]

    /// The identifiers the emitter writes itself: loop counters, the locals of its row-wise and window kernels,
    /// the entry point's parameters and arena bases, C keywords and the math functions it calls.
    static let reserved = Set([
        "n", "i", "j", "idx", "i0", "i1", "j0", "j1", "lo", "hi", "size", "a", "arg", "part", "b", "c", "p", "q", "z",
        "g", "zy", "mx", "sum", "lse", "lp", "sg", "acc", "scale", "best", "row", "rng", "ws", "ctx", "out", "arena",
        "P", "G", "S", "A", "NULL", "INFINITY",
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
        "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
        "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
    ]).union(["exp", "log", "sqrt", "pow", "fmin", "fmax", "tanh", "cos", "sin", "floor", "fabs", "erf", "log1p"].flatMap { [$0, $0 + "f"] })
        .union((0..<8).map { "a\($0)" })   // AxisLoops' loop variables
}
