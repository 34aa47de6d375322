/// An SSA value: the index of the node that defines it.
public struct ValueID: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public var index: Int
    public init(_ index: Int) { self.index = index }
    public static func < (a: ValueID, b: ValueID) -> Bool { a.index < b.index }
    public var description: String { "%\(index)" }
}

/// One operation in the graph. Its operands are always defined earlier, so node order is a topological order.
public struct Node: Codable, Hashable, Sendable {
    public var op: Op
    public var inputs: [ValueID]
    public var type: TensorType
    /// The DSL site that created it, when there is one.
    public var site: SourceSite?
    /// What the value is, for readers of the generated C (`h1`, `dW0`, `step_size`): given by the DSL to a
    /// layer's output, by autodiff to a gradient, by the optimizer lowering to its terms (`Graph+Names`).
    public var name: String?

    public init(_ op: Op, _ inputs: [ValueID], _ type: TensorType, site: SourceSite? = nil, name: String? = nil) {
        self.op = op
        self.inputs = inputs
        self.type = type
        self.site = site
        self.name = name
    }
}

/// How a parameter starts, before any training.
public enum Initializer: Codable, Hashable, Sendable, CustomStringConvertible {
    case zeros
    case constant(Double)
    case uniform(Double, Double)
    case normal(mean: Double, std: Double)

    public var description: String {
        switch self {
        case .zeros: return "zeros"
        case .constant(let c): return "constant(\(formatNumber(c)))"
        case .uniform(let a, let b): return "uniform(\(formatNumber(a)), \(formatNumber(b)))"
        case .normal(let m, let s): return "normal(\(formatNumber(m)), \(formatNumber(s)))"
        }
    }
}

/// A parameter or buffer, named as in PyTorch's state_dict.
public struct ParamInfo: Codable, Hashable, Sendable {
    public var name: String
    public var shape: [Int]
    public var initializer: Initializer
    public var trainable: Bool
    /// A step counter saved as an int64 scalar (PyTorch's `num_batches_tracked`); the trainer adds one per step.
    public var counter = false

    public init(name: String, shape: [Int], initializer: Initializer, trainable: Bool = true) {
        self.name = name
        self.shape = shape
        self.initializer = initializer
        self.trainable = trainable
    }
    public var count: Int { shape.reduce(1, *) }
}

/// A run-time scalar hyperparameter, overridable on the trainer's command line as `--name`.
public struct HyperInfo: Codable, Hashable, Sendable {
    public var name: String
    public var value: Double
    public var help: String

    public init(name: String, value: Double, help: String) {
        self.name = name
        self.value = value
        self.help = help
    }
}

/// A tensor-level SSA graph plus the tables the runtime needs.
public struct Graph: Codable, Hashable, Sendable {
    public var name: String
    public var nodes: [Node] = []
    /// The named results: the loss, the model's output, and once differentiated and updated, the gradients and
    /// the learning rate.
    public var outputs: [GraphOutput: ValueID] = [:]
    public var params: [ParamInfo] = []
    public var hypers: [HyperInfo] = []
    public var config: TrainingConfig

    public init(name: String, config: TrainingConfig) {
        self.name = name
        self.config = config
    }

    public subscript(_ v: ValueID) -> Node { nodes[v.index] }
    public func type(_ v: ValueID) -> TensorType { nodes[v.index].type }
    public var ids: [ValueID] { nodes.indices.map(ValueID.init) }

    /// Appends a node after checking its type against the shape rules.
    @discardableResult
    public mutating func add(_ op: Op, _ inputs: [ValueID], declared: TensorType? = nil,
                             site: SourceSite? = nil) throws -> ValueID {
        let type = try op.resultType(inputs.map { self.type($0) }, declared: declared)
        nodes.append(Node(op, inputs, type, site: site))
        return ValueID(nodes.count - 1)
    }

    public func param(named name: String) -> ParamInfo? { params.first { $0.name == name } }
    public func hyper(named name: String) -> HyperInfo? { hypers.first { $0.name == name } }

    /// The users of each value.
    public func users() -> [[ValueID]] {
        var u = Array(repeating: [ValueID](), count: nodes.count)
        for v in ids { for i in self[v].inputs { u[i.index].append(v) } }
        return u
    }

    /// The values reachable backwards from the given roots.
    public func live(from roots: [ValueID]) -> Set<ValueID> {
        var seen = Set<ValueID>(), stack = roots
        while let v = stack.popLast() {
            if seen.insert(v).inserted { stack.append(contentsOf: self[v].inputs) }
        }
        return seen
    }
}
