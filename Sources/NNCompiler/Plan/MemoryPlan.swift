import NNIR

/// Where a value lives while a program runs.
public enum Storage: Hashable, Sendable {
    case input(String)                 // the batch the runtime passes in: x, y
    case param(ParamID)                // params + the parameter's offset (`ParamLayout`)
    case grad(ParamID)                 // grads + the same offset: the parameter's gradient
    case state(StateID)                // state + slot·params_numel + the parameter's offset
    case output                        // the caller's `out` buffer (eval, predict)
    case arena(Int)                    // arena + byte offset
    case local                         // a scalar in a C local variable
    case register                      // never stored: lives inside its kernel's loop
}

/// Liveness-based placement of every value of a program, with the bytes it saves.
public struct MemoryPlan: Sendable {
    public var storage: [ValueID: Storage] = [:]
    /// For each GEMM kernel, the value whose buffer the GEMM writes (its epilogue then runs in place).
    public var gemmTarget: [Int: ValueID] = [:]
    /// For each kernel that needs a workspace (a float32 convolution), its byte range in the arena, live during
    /// that kernel only.
    public var scratch: [Int: (offset: Int, bytes: Int)] = [:]
    public var lifetimes: [ValueID: ClosedRange<Int>] = [:]
    public var arenaBytes = 0
    public var naiveBytes = 0
    public let elementSize: Int
    public let maxBatch: Int
    /// Values stored as their max pooling's window bytes (Program.pooledValues), with that pooling's type: one
    /// byte per window.
    public var windowBytes: [ValueID: TensorType] = [:]

    public func bytes(_ t: TensorType) -> Int { t.shape.count(batch: maxBatch) * elementSize }
    /// The bytes value `v` of type `t` takes in its storage.
    public func bytes(of v: ValueID, _ t: TensorType) -> Int { windowBytes[v].map { $0.shape.count(batch: maxBatch) } ?? bytes(t) }
}

extension Program {
    /// Places every value: sources and gradients in their arenas, activations in one arena by liveness.
    public func planMemory(elementSize: Int) -> MemoryPlan {
        var plan = MemoryPlan(elementSize: elementSize, maxBatch: graph.config.maxBatch)
        plan.windowBytes = pooledValues().mapValues { graph.type($0) }
        let where_ = kernelIndex()
        let stored = materialized()

        func pin(_ v: ValueID, _ s: Storage) { if plan.storage[v] == nil { plan.storage[v] = s } }
        // Sources, effects and pinned results first.
        for v in graph.live(from: roots) {
            switch graph[v].op {
            case .input(let name): pin(v, .input(name))
            case .param(let p), .assign(.param(let p)): pin(v, .param(p))
            case .state(let s), .assign(.state(let s)): pin(v, .state(s))
            case .hyper, .constant, .stepCount, .epochCount, .lrOverride, .stepsPerEpoch, .batchSize: pin(v, .local)
            default: if graph.type(v).shape.isScalar { pin(v, .local) }
            }
        }
        if kind.updates || kind == .gradcheck {
            for p in graph.paramIDs where graph[p].trainable {
                if let g = graph.gradient(of: p), where_[g] != nil { pin(g, .grad(p)) }
            }
        }
        if kind == .eval || kind == .predict, let o = graph.outputs[.output], where_[o] != nil { pin(o, .output) }
        if kind == .inputGrad, let o = graph.outputs[.inputGradient], where_[o] != nil { pin(o, .output) }
        chooseGemmTargets(&plan, stored: stored)
        allocateArena(&plan, stored: stored, where_: where_)
        for v in graph.live(from: roots) where plan.storage[v] == nil { plan.storage[v] = .register }
        return plan
    }

    /// A GEMM writes into its own value's buffer when that is stored, else into the first stored epilogue value
    /// of the same shape, which the epilogue loop then updates in place.
    private func chooseGemmTargets(_ plan: inout MemoryPlan, stored: Set<ValueID>) {
        for (i, k) in kernels.enumerated() where k.kind == .gemm {
            let a = k.anchor!
            if stored.contains(a) || plan.storage[a] != nil { plan.gemmTarget[i] = a; continue }
            let t = k.body.first { stored.contains($0) && graph.type($0) == graph.type(a) && !isAssign($0) }
            plan.gemmTarget[i] = t ?? a
        }
    }

    func isAssign(_ v: ValueID) -> Bool { if case .assign = graph[v].op { return true } else { return false } }

    /// First-fit placement of the remaining stored values in one arena, freeing each after its last use.
    private func allocateArena(_ plan: inout MemoryPlan, stored: Set<ValueID>, where_: [ValueID: Int]) {
        let users = graph.users()
        let rootSet = Set(roots)
        var needs = stored.union(plan.gemmTarget.values).filter { plan.storage[$0] == nil }
        needs.subtract(needs.filter { graph.type($0).shape.isScalar })
        for v in needs {
            let def = where_[v]!
            let uses = users[v.index].compactMap { where_[$0] }
            plan.lifetimes[v] = def...(rootSet.contains(v) ? kernels.count : max(def, uses.max() ?? def))
        }
        var arena = FirstFit()
        for i in kernels.indices {
            let born = needs.filter { where_[$0] == i }.sorted()
            for v in born {
                let off = arena.allocate(plan.bytes(of: v, graph.type(v)))
                plan.storage[v] = .arena(off)
                plan.naiveBytes += plan.bytes(of: v, graph.type(v))
            }
            let ws = scratchElements(kernels[i], elementSize: plan.elementSize) * plan.elementSize
            if ws > 0 {
                plan.scratch[i] = (arena.allocate(ws), ws)
                arena.free(plan.scratch[i]!.offset, ws)
            }
            for v in needs where plan.lifetimes[v]!.upperBound == i {
                if case .arena(let off)? = plan.storage[v] { arena.free(off, plan.bytes(of: v, graph.type(v))) }
            }
        }
        plan.arenaBytes = arena.high
    }
}

/// A first-fit allocator over byte ranges, 64-byte aligned, that remembers its high-water mark.
struct FirstFit {
    private var free: [(start: Int, size: Int)] = []
    private(set) var high = 0

    mutating func allocate(_ bytes: Int) -> Int {
        let size = (bytes + 63) / 64 * 64
        if let i = free.firstIndex(where: { $0.size >= size }) {
            let start = free[i].start
            if free[i].size == size { free.remove(at: i) } else { free[i] = (start + size, free[i].size - size) }
            return start
        }
        // Grow from the top, reusing a free block that ends at the high-water mark.
        if let last = free.last, last.start + last.size == high {
            free.removeLast()
            high = last.start + size
            return last.start
        }
        defer { high += size }
        return high
    }

    mutating func free(_ start: Int, _ bytes: Int) {
        let size = (bytes + 63) / 64 * 64
        free.append((start, size))
        free.sort { $0.start < $1.start }
        var merged: [(start: Int, size: Int)] = []
        for b in free {
            if let l = merged.last, l.start + l.size == b.start { merged[merged.count - 1].size += b.size }
            else { merged.append(b) }
        }
        free = merged
    }
}
