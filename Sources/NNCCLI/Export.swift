import ArgumentParser
import Foundation
import NNCompiler
import NNExport

/// `nncc export model.swiftnn --weights W.safetensors -o model.onnx`: the trained model's inference graph as ONNX.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a trained model's inference graph, with its weights, as an ONNX model.",
        discussion: """
        The graph is what the trainer's predict computes: the forward graph in eval mode (dropout off, \
        BatchNorm with its running statistics), then a softmax for a classifier, so the output is the \
        probabilities predict writes. ONNX opset \(OnnxExport.opset); the input "x" and the output \
        ("probabilities", or "output" for regression) have a symbolic batch dimension. The weights become \
        initializers; they are checked strictly against the model, as the trainer's --weights are.
        """)

    @Argument(help: "The model file, Swift source that imports NNDSL.")
    var file: String

    @Option(help: ArgumentHelp("The trained weights (train --save) or a checkpoint.", valueName: "W.safetensors"))
    var weights: String

    @Option(name: .shortAndLong, help: "The ONNX file to write (default: the model file's name with .onnx, here).")
    var output: String?

    @OptionGroup var options: ModelFileOptions

    func run() throws {
        let driver = try options.driver()
        let forward = try driver.evaluate(file)
        try forward.verify()
        let model = try OnnxExport.model(forward, weights: SafetensorsFile(contentsOf: URL(fileURLWithPath: weights)))
        let out = output ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent + ".onnx"
        do {
            try model.serializedData().write(to: URL(fileURLWithPath: out), options: .atomic)
        } catch {
            throw ExportError("\(out): cannot write the ONNX file (\(SafetensorsFile.reason(error)))")
        }
        print("wrote \(out) (ONNX opset \(OnnxExport.opset), \(model.graph.node.count) nodes, \(model.graph.initializer.count) initializers)")
    }
}
