import Foundation
@_exported import NNIR

/// Collects the graph while model.swiftnn runs. There is one per process: the driver runs each model file
/// in its own process.
final class GraphBuilder {
    static let shared = GraphBuilder()

    var graph = Graph(name: "model", config: TrainingConfig(
        inputDim: 0, outputDim: 0, target: .classes, batchSize: 1, maxBatch: 1, epochs: 1, seed: 0,
        optimizer: .sgd(learningRate: 0.01, momentum: 0, nesterov: false)))
    /// The Sequential indices enclosing the layer being applied, e.g. ["1", "0"] names "1.0.weight".
    var scope: [String] = []
    var autoNames: [String: Int] = [:]
    var input: ValueID?
    var trained = false

    /// Adds a node, or reports a DSL error at `site` and exits.
    @discardableResult
    func add(_ op: Op, _ inputs: [ValueID], declared: TensorType? = nil, site: SourceSite?) -> ValueID {
        do {
            return try graph.add(op, inputs, declared: declared, site: site)
        } catch let e as Diagnostic {
            fail(e.message, at: site)
        } catch {
            fail("\(error)", at: site)
        }
    }

    /// A fresh name for a layer used outside any Sequential: "linear0", "linear1", …
    func autoName(_ kind: String) -> String {
        let k = autoNames[kind, default: 0]
        autoNames[kind] = k + 1
        return "\(kind)\(k)"
    }

    func scoped(_ name: String) -> String { (scope + [name]).joined(separator: ".") }

    /// Names a value inside the layer at `prefix` for the generated C: `role` and the layer's path (`xhat1`).
    @discardableResult
    func name(_ v: ValueID, _ role: String, _ prefix: String) -> ValueID {
        graph.nodes[v.index].name = layerValueName(role, prefix)
        return v
    }
}

enum ParamKind { case trainable, buffer }

/// Stops with a diagnostic at the layer's site unless `x` is (n, features).
func expectFeatures(_ x: Tensor, _ features: Int, layer: String, site: SourceSite) {
    let t = GraphBuilder.shared.graph.type(x.id)
    guard t.shape.batched, t.shape.dims == [features] else {
        fail("\(layer) expects input (n,\(features)), got \(t.shape)", at: site)
    }
}

/// The state_dict prefix of a layer's parameters: its given name (inside the enclosing Sequentials), its index
/// in the enclosing Sequential, or for a layer used on its own, "<kind>0", "<kind>1", …
func layerPrefix(_ name: String?, kind: String) -> String {
    let b = GraphBuilder.shared
    if let name { return b.scoped(name) }
    return b.scope.isEmpty ? b.autoName(kind) : b.scope.joined(separator: ".")
}

/// Declares a parameter (or a buffer the optimizer never touches) and returns its value in the graph.
@discardableResult
func declareParameter(_ name: String, _ shape: [Int], _ initializer: Initializer, kind: ParamKind = .trainable,
                      site: SourceSite) -> ValueID {
    let b = GraphBuilder.shared
    if b.graph.param(named: name) != nil { fail("two parameters are named '\(name)'", at: site) }
    checkParameterSize(name, shape, site: site)
    let id = b.graph.declareParam(ParamInfo(name: name, shape: shape, initializer: initializer, trainable: kind == .trainable))
    return b.add(.param(id), [], declared: TensorType(.f32, Shape(shape)), site: site)
}

/// A parameter, and the parameters together, must fit `Limits` (checked without overflowing an Int).
func checkParameterSize(_ name: String, _ shape: [Int], site: SourceSite) {
    let shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
    guard let n = Limits.elements(shape) else {
        fail("parameter '\(name)' of shape \(shapeText) takes \(Limits.gigabytes(shape)), more than \(Limits.limitDescription)",
             at: site)
    }
    let before = GraphBuilder.shared.graph.params.reduce(0) { $0 + (Limits.elements($1.shape) ?? 0) }
    if before + n > Limits.maxElements {
        fail("the parameters take \(Limits.gigabytes([before + n])) with '\(name)' of shape \(shapeText), more than "
             + Limits.limitDescription, at: site)
    }
}

/// Declares a step counter saved with the weights (PyTorch's `num_batches_tracked`, an int64 scalar): the trainer
/// adds one per training step. It has no value in the graph.
func declareCounter(_ name: String, site: SourceSite) {
    let b = GraphBuilder.shared
    if b.graph.param(named: name) != nil { fail("two parameters are named '\(name)'", at: site) }
    var p = ParamInfo(name: name, shape: [], initializer: .zeros, trainable: false)
    p.counter = true
    b.graph.declareParam(p)
}

/// Prints a diagnostic in the compiler's format and ends the evaluation of the model file.
func fail(_ message: String, at site: SourceSite?) -> Never {
    FileHandle.standardError.write(Data("\(Diagnostic.error(message, at: site))\n".utf8))
    exit(1)
}

func site(_ file: String, _ line: Int, _ column: Int) -> SourceSite {
    SourceSite(file: file, line: line, column: column)
}
