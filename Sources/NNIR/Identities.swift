/// A parameter or buffer of a graph: its index in `Graph.params`, as `ValueID` is an index into `Graph.nodes`.
/// Every graph derived from a forward graph (specialized, differentiated, with the optimizer update) keeps its
/// parameter table, so an ID means the same parameter in all of them.
public struct ParamID: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public var index: Int
    public init(_ index: Int) { self.index = index }
    public static func < (a: ParamID, b: ParamID) -> Bool { a.index < b.index }
    public var description: String { "param#\(index)" }
}

/// A run-time hyperparameter: its index in `Graph.hypers`, and in the trainer's `ctx->hp`.
public struct HyperID: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public var index: Int
    public init(_ index: Int) { self.index = index }
    public static func < (a: HyperID, b: HyperID) -> Bool { a.index < b.index }
    public var description: String { "hyper#\(index)" }
}

/// A kind of per-parameter optimizer state, named as in PyTorch's optimizer state_dict.
public enum StateSlot: String, Codable, Hashable, Sendable, CaseIterable {
    /// SGD's momentum buffer (PyTorch's form, v ← μv + g), or the lectures' velocity (v ← μv − lr·g).
    case momentum, velocity
    /// Adam's first and second moments, and AMSGrad's running maximum of the second.
    case m, v, vMax = "v_max"
    /// AdaGrad's sum of squared gradients.
    case sum
    /// RMSprop's running mean of g², its momentum buffer and (centered) its running mean of g.
    case squareAvg = "square_avg", momentumBuffer = "momentum_buffer", gradAvg = "grad_avg"
}

/// One parameter's optimizer state in one slot: it lives at state[slot · params_numel + offset(param)].
public struct StateID: Hashable, Codable, Sendable {
    public var slot: StateSlot
    public var param: ParamID
    public init(_ slot: StateSlot, of param: ParamID) {
        self.slot = slot
        self.param = param
    }
}

/// A buffer an `assign` writes: a parameter (trained, or a buffer such as a running mean) or optimizer state.
public enum BufferID: Hashable, Codable, Sendable {
    case param(ParamID)
    case state(StateID)
}

/// A named result of a graph.
public enum GraphOutput: Hashable, Codable, Sendable {
    /// The scalar loss the trainer minimizes and reports.
    case loss
    /// The model's output (logits for a classifier).
    case output
    /// The learning rate the update used, after the schedule.
    case learningRate
    /// The gradient of the loss with respect to a trainable parameter.
    case gradient(ParamID)
    /// The input-gradient program's scalar: the seeded sum of layer outputs whose gradient it takes.
    case score
    /// The gradient of `score` with respect to the model's input x.
    case inputGradient
}

extension OptimizerSpec {
    /// The optimizer state kept per parameter, in arena order: slot k of parameter p lives at
    /// state[k · params_numel + offset(p)].
    public var stateSlots: [StateSlot] {
        switch self {
        case .sgd(_, let momentum, _, _, let velocity): return momentum > 0 ? [velocity ? .velocity : .momentum] : []
        case .adam(_, _, _, _, _, _, let amsgrad): return [.m, .v] + (amsgrad ? [.vMax] : [])
        case .adagrad: return [.sum]
        case .rmsprop(_, _, _, _, let momentum, let centered):
            return [.squareAvg] + (momentum > 0 ? [.momentumBuffer] : []) + (centered ? [.gradAvg] : [])
        case .lbfgs: return []   // its history lives in the runtime (runtime/lbfgs.c)
        }
    }
}

extension BufferID {
    /// The parameter the buffer belongs to: itself, or the one whose state it is.
    public var param: ParamID {
        switch self {
        case .param(let p): return p
        case .state(let s): return s.param
        }
    }
}

extension Op {
    /// The parameter a `param`, `state` or `assign` node refers to.
    public var paramReference: ParamID? {
        switch self {
        case .param(let p): return p
        case .state(let s): return s.param
        case .assign(let b): return b.param
        default: return nil
        }
    }
}

extension Graph {
    public subscript(_ p: ParamID) -> ParamInfo { params[p.index] }
    public subscript(_ h: HyperID) -> HyperInfo { hypers[h.index] }

    /// The IDs of the parameters and buffers, in table order.
    public var paramIDs: [ParamID] { params.indices.map(ParamID.init) }

    public func paramID(named name: String) -> ParamID? { params.firstIndex { $0.name == name }.map(ParamID.init) }
    public func hyperID(named name: String) -> HyperID? { hypers.firstIndex { $0.name == name }.map(HyperID.init) }

    /// Adds a parameter or buffer to the table.
    @discardableResult
    public mutating func declareParam(_ p: ParamInfo) -> ParamID {
        params.append(p)
        return ParamID(params.count - 1)
    }

    /// Adds the hyperparameter if it is not there yet (the first definition wins), and returns its ID.
    @discardableResult
    public mutating func declareHyper(_ name: String, _ value: Double, _ help: String) -> HyperID {
        if let h = hyperID(named: name) { return h }
        hypers.append(HyperInfo(name: name, value: value, help: help))
        return HyperID(hypers.count - 1)
    }

    /// The node that reads parameter `p`, if the graph has one.
    public func node(of p: ParamID) -> ValueID? { ids.first { self[$0].op == .param(p) } }

    /// The gradient of the loss with respect to `p`, once the graph is differentiated.
    public func gradient(of p: ParamID) -> ValueID? { outputs[.gradient(p)] }

    /// How dumps and messages spell a state: "m[0.weight]".
    public func name(of s: StateID) -> String { "\(s.slot.rawValue)[\(self[s.param].name)]" }

    /// How dumps and messages spell a buffer: "0.weight", "m[0.weight]".
    public func name(of b: BufferID) -> String {
        switch b {
        case .param(let p): return self[p].name
        case .state(let s): return name(of: s)
        }
    }

    /// How dumps spell an output: "loss", "output", "lr", "grad.0.weight".
    public func name(of o: GraphOutput) -> String {
        switch o {
        case .loss: return "loss"
        case .output: return "output"
        case .learningRate: return "lr"
        case .gradient(let p): return "grad.\(self[p].name)"
        case .score: return "score"
        case .inputGradient: return "grad.x"
        }
    }
}
