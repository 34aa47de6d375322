import Foundation

/// Declares how the model trains. Every model file calls `train` once, last.
///
/// ```swift
/// train(model, input: 784, loss: .crossEntropy, optimizer: Adam(learningRate: 1e-3), batchSize: 128, epochs: 10)
/// ```
/// `schedule` sets the learning rate per step (or per epoch with `schedulePer: .epoch`; see `LRSchedule`).
/// `batchSize`, `epochs`, `seed`, the optimizer's and the schedule's numbers are defaults the trainer's command line can
/// override. `maxBatch` is the largest batch the compiled trainer accepts (its arena is sized for it).
public func train(_ model: Layer, input features: Int, loss: Loss, optimizer: Optimizer,
                  schedule: LRSchedule = .constant, schedulePer: ScheduleStep = .step, batchSize: Int = 64,
                  epochs: Int = 10, seed: UInt64 = 0, maxBatch: Int? = nil, penalty: Penalty? = nil,
                  file: String = #filePath, line: Int = #line, column: Int = #column) {
    train(model, input: [features], loss: loss, optimizer: optimizer, schedule: schedule, schedulePer: schedulePer,
          batchSize: batchSize, epochs: epochs, seed: seed, maxBatch: maxBatch, penalty: penalty,
          file: file, line: line, column: column)
}

/// Trains `model` on inputs of the given per-sample shape: `[784]` for vectors, `[1, 28, 28]` for images
/// (channels, height, width), which the data's flat rows are read as in row-major order.
public func train(_ model: Layer, input shape: [Int], loss: Loss, optimizer: Optimizer,
                  schedule: LRSchedule = .constant, schedulePer: ScheduleStep = .step, batchSize: Int = 64,
                  epochs: Int = 10, seed: UInt64 = 0, maxBatch: Int? = nil, penalty: Penalty? = nil,
                  file: String = #filePath, line: Int = #line, column: Int = #column) {
    let s = site(file, line, column)
    let x: Tensor
    switch shape.count {
    case 1: x = Input(shape[0], file: file, line: line, column: column)
    case 3: x = Input(channels: shape[0], height: shape[1], width: shape[2], file: file, line: line, column: column)
    default: fail("input: is the shape of one sample, [features] or [channels, height, width]; got \(shape)", at: s)
    }
    finish(LossTerms(terms: [.init(loss: loss, head: model(x), weight: 1, site: s)]), optimizer: optimizer, schedule: schedule, schedulePer: schedulePer, batchSize: batchSize, epochs: epochs, seed: seed,
           maxBatch: maxBatch, penalty: penalty, site: s)
}

/// The functional form: `output` is computed from an `Input(…)` with layers and tensor operations.
public func train(_ output: Tensor, loss: Loss, optimizer: Optimizer, schedule: LRSchedule = .constant,
                  schedulePer: ScheduleStep = .step, batchSize: Int = 64, epochs: Int = 10,
                  seed: UInt64 = 0, maxBatch: Int? = nil, penalty: Penalty? = nil,
                  file: String = #filePath, line: Int = #line, column: Int = #column) {
    let s = site(file, line, column)
    finish(LossTerms(terms: [.init(loss: loss, head: output, weight: 1, site: s)]), optimizer: optimizer, schedule: schedule,
           schedulePer: schedulePer, batchSize: batchSize, epochs: epochs, seed: seed, maxBatch: maxBatch, penalty: penalty,
           site: s)
}

func finish(_ loss: LossTerms, optimizer: Optimizer, schedule: LRSchedule = .constant,
            schedulePer: ScheduleStep = .step, batchSize: Int, epochs: Int, seed: UInt64,
            maxBatch: Int?, penalty: Penalty? = nil, site s: SourceSite) {
    let b = GraphBuilder.shared
    if b.trained { fail("train(…) is called twice; a model file trains one model", at: s) }
    b.trained = true
    guard let x = b.input else { fail("the model's output does not depend on an Input(…)", at: s) }
    let output = loss.main.head
    let out = b.graph.type(output.id).shape
    guard out.batched, out.dims.count == 1 else {
        fail("the model's output must be (n,k), got \(out)", at: s)
    }
    if batchSize < 1 { fail("batchSize must be at least 1, got \(batchSize)", at: s) }
    if optimizer.spec.isFullBatch && schedule.spec != .constant {
        fail("LBFGS takes no learning-rate schedule (its line search chooses each step's length); drop schedule:", at: s)
    }
    if epochs < 1 { fail("epochs must be at least 1, got \(epochs)", at: s) }
    // Larger batches serve inference; images need far more arena per sample than feature vectors.
    let maxB = maxBatch ?? max(batchSize, b.graph.type(x).shape.dims.count > 1 ? 256 : 1024)
    if maxB < batchSize { fail("maxBatch \(maxB) is smaller than batchSize \(batchSize)", at: s) }
    if maxB > Limits.maxElements { fail("maxBatch \(maxB) is more than \(Limits.maxElements), the trainer's 32-bit batch", at: s) }
    loss.check(input: x)
    let k = out.dims[0]
    let target = loss.main.loss.target
    let yType = target == .classes ? TensorType(.i32, Shape(batched: true, []))
                                        : TensorType(.f32, Shape(batched: true, [k]))
    let y = b.add(.input("y"), [], declared: yType, site: s)
    let (trained, criterion) = loss.build(y)
    var l = trained
    // The auxiliary heads' losses and the penalty are part of the loss that is trained and logged, as
    // `loss = criterion(…) + 0.3 * criterion(aux) + penalty` in PyTorch; evaluation (validation and test loss, eval)
    // reports the main head's criterion alone, and so never computes the auxiliary heads.
    b.graph.nodes[l.index].name = "loss"
    if trained != criterion { l = b.add(.byMode(.auxiliary), [trained, criterion], site: loss.terms.last!.site) }
    if let penalty {
        b.graph.nodes[trained.index].name = trained == criterion ? "criterion" : "heads_loss"
        let total = b.add(.binary(.add), [l, penalty.build()], site: penalty.site)
        b.graph.nodes[total.index].name = "loss"
        l = b.add(.byMode(.penalty), [total, l], site: penalty.site)
    }
    b.graph.outputs = [.output: output.id, .loss: l]
    let stem = URL(fileURLWithPath: s.file).deletingPathExtension().lastPathComponent
    b.graph.name = stem
    b.graph.config = TrainingConfig(
        inputDim: b.graph.type(x).shape.fixedCount, outputDim: k, target: target, batchSize: batchSize,
        maxBatch: maxB, epochs: epochs, seed: seed, optimizer: optimizer.spec,
        schedule: schedule.spec, scheduleInterval: schedulePer.interval)
    write(b.graph, site: s)
}

/// Hands the graph to the compiler: JSON to the file named by NNCC_GRAPH_OUT, or stdout.
func write(_ graph: Graph, site s: SourceSite) {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    guard let data = try? enc.encode(graph) else { fail("internal error: cannot encode the graph", at: s) }
    if let path = ProcessInfo.processInfo.environment["NNCC_GRAPH_OUT"] {
        do { try data.write(to: URL(fileURLWithPath: path)) } catch { fail("cannot write \(path): \(error)", at: s) }
    } else {
        FileHandle.standardOutput.write(data)
    }
}
