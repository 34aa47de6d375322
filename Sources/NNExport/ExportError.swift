/// Why `nncc export` cannot write a model: a bad weights file, or an op of the inference graph that has no
/// ONNX lowering. `nncc` prints it as `nncc: error: <message>` and exits 1.
public struct ExportError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
