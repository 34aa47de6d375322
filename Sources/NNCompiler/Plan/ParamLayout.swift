import NNIR

/// Where each parameter and its optimizer state sit, computed once per model (`compile`) and shared by every
/// program: in the params arena, trainable parameters first in table order, then buffers; the grads arena has
/// the same layout; the state arena holds one copy of it per optimizer slot, slot k at k · `total`.
public struct ParamLayout: Sendable {
    /// The parameters in arena order.
    public private(set) var order: [ParamID] = []
    /// Each parameter's offset and element count (indexed by `ParamID.index`).
    public private(set) var offsets: [Int] = []
    public private(set) var counts: [Int] = []
    /// The elements of the params arena.
    public private(set) var total = 0
    /// The optimizer's state slots, in arena order.
    public let slots: [StateSlot]

    public init(_ graph: Graph) {
        slots = graph.config.optimizer.stateSlots
        offsets = Array(repeating: 0, count: graph.params.count)
        counts = graph.params.map(\.count)
        order = graph.paramIDs.filter { graph[$0].trainable } + graph.paramIDs.filter { !graph[$0].trainable }
        for p in order {
            offsets[p.index] = total
            total += counts[p.index]
        }
    }

    public func offset(_ p: ParamID) -> Int { offsets[p.index] }
    public func count(_ p: ParamID) -> Int { counts[p.index] }

    /// The position of a slot in the state arena.
    public func slotIndex(_ s: StateSlot) -> Int { slots.firstIndex(of: s)! }

    /// The offset of a state in the state arena.
    public func offset(_ s: StateID) -> Int { slotIndex(s.slot) * total + offset(s.param) }

    /// The elements of the state arena.
    public var stateTotal: Int { slots.count * total }

    /// Whether the parameters follow one another in the arena, in this order.
    func isContiguous(_ ps: [ParamID]) -> Bool {
        zip(ps, ps.dropFirst()).allSatisfy { offset($0) + count($0) == offset($1) }
    }
}
