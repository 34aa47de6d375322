import Foundation
import NNCompiler
import NNIR
import Testing

/// A graph with a placeholder training configuration, for tests that build IR by hand.
func makeTestGraph(_ name: String, optimizer: OptimizerSpec = .sgd(learningRate: 0.1, momentum: 0, nesterov: false))
    -> Graph {
    Graph(name: name, config: TrainingConfig(inputDim: 1, outputDim: 1, target: .dense, batchSize: 4, maxBatch: 4,
                                             epochs: 1, seed: 0, optimizer: optimizer))
}

extension Graph {
    /// Declares a parameter (or, with `trainable: false`, a buffer) and adds its node.
    mutating func addParam(_ name: String, _ shape: [Int], trainable: Bool = true) throws -> ValueID {
        let p = declareParam(ParamInfo(name: name, shape: shape, initializer: .zeros, trainable: trainable))
        return try add(.param(p), [], declared: TensorType(.f32, Shape(shape)))
    }

    /// Adds a batched input whose per-sample dimensions are `dims`.
    mutating func addInput(_ name: String, _ dims: [Int], dtype: DType = .f32) throws -> ValueID {
        try add(.input(name), [], declared: TensorType(dtype, Shape(batched: true, dims)))
    }
}

/// Expects `actual` to equal `expected` elementwise within |a − e| ≤ max(rel·|e|, abs), and reports the worst
/// element. The source location is forwarded so that a failure points at the test.
func expectClose(_ actual: Tensor64?, _ expected: Tensor64, rel: Double, abs floor: Double, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard let actual else {
        Issue.record("\(what): no value", sourceLocation: sourceLocation)
        return
    }
    guard actual.shape == expected.shape else {
        Issue.record("\(what): shape \(actual.shape), expected \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    var worst: (index: Int, excess: Double)? = nil
    for (i, (a, e)) in zip(actual.data, expected.data).enumerated() {
        let excess = abs(a - e) / max(rel * abs(e), floor)
        guard !(excess <= 1) else { continue }   // NaN is a failure too
        if worst.map({ excess > $0.excess }) ?? true { worst = (i, excess) }
    }
    if let (i, _) = worst {
        let (a, e) = (actual.data[i], expected.data[i])
        Issue.record("\(what): element \(i) of \(expected.shape) is \(a), expected \(e) (difference \(abs(a - e)))",
                     sourceLocation: sourceLocation)
    }
}

/// A small deterministic generator (SplitMix64), so the checks see the same numbers on every run.
struct TestRandom {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [a, b).
    mutating func uniform(_ a: Double, _ b: Double) -> Double {
        a + (b - a) * Double(next() >> 11) / Double(1 << 53)
    }

    mutating func tensor(_ shape: [Int], _ a: Double, _ b: Double) -> Tensor64 {
        Tensor64(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in uniform(a, b) })
    }
}
