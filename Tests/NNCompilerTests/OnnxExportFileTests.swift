import Foundation
import NNExport
import SwiftProtobuf
import Testing

/// `nncc export` without Python: the file decodes back with SwiftProtobuf into the graph and weights expected,
/// and a bad weights file or command line is one error line with exit 1 (2 for usage).
@Suite(.serialized) struct OnnxExportFileTests {
    static let work = Paths.tempDir("onnxfile")
    static let mlp = Paths.examples.appendingPathComponent("fashion_mnist_mlp.swiftnn")
    static let shapes: [String: [Int]] = ["0.weight": [256, 784], "0.bias": [256], "2.weight": [128, 256],
                                          "2.bias": [128], "4.weight": [10, 128], "4.bias": [10]]

    /// The MLP's weights, deterministic values in (−0.5, 0.5).
    static func weights() -> [String: (shape: [Int], data: [Float])] {
        var rng = TestRandom(seed: 11)
        var w: [String: (shape: [Int], data: [Float])] = [:]
        for (name, shape) in shapes.sorted(by: { $0.key < $1.key }) {
            w[name] = (shape, (0..<shape.reduce(1, *)).map { _ in Float(rng.next() % 1000) / 1000 - 0.5 })
        }
        return w
    }

    static func export(_ weights: URL, to out: URL) throws -> Run {
        try Run.run(Paths.nncc, ["export", mlp.path, "--weights", weights.path, "-o", out.path])
    }

    @Test func mlpDecodesToItsGraphAndWeights() throws {
        let w = Self.work.appendingPathComponent("mlp.safetensors"), out = Self.work.appendingPathComponent("mlp.onnx")
        let values = Self.weights()
        try writeSafetensors(w, values)
        let r = try Self.export(w, to: out)
        try #require(r.status == 0, "\(r.stderr)")
        let model = try Onnx_ModelProto(serializedBytes: Data(contentsOf: out))
        #expect(model.irVersion == 8 && model.opsetImport.map(\.version) == [17] && model.producerName == "nncc")
        let g = model.graph
        #expect(g.node.map(\.opType) == ["Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax"],
                "Linear is one Gemm with its bias; predict's softmax ends the graph")
        #expect(g.node.first?.docString.hasPrefix("fashion_mnist_mlp.swiftnn:") == true, "nodes name their model line")
        func dims(_ v: Onnx_ValueInfoProto) -> [String] {
            v.type.tensorType.shape.dim.map { d in
                if case .dimValue(let n)? = d.value { return String(n) }
                return d.dimParam
            }
        }
        #expect(g.input.map(\.name) == ["x"] && g.input.map(dims) == [["batch", "784"]])
        #expect(g.output.map(\.name) == ["probabilities"] && g.output.map(dims) == [["batch", "10"]])
        let inits = Dictionary(uniqueKeysWithValues: g.initializer.map { ($0.name, $0) })
        #expect(Set(inits.keys) == Set(Self.shapes.keys), "the initializers are the state_dict's tensors, by name")
        for (name, (shape, data)) in values {
            let t = try #require(inits[name])
            #expect(t.dims == shape.map(Int64.init) && t.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue), "\(name)")
            let decoded = t.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            #expect(decoded == data, "\(name): the weights are stored exactly")
        }
        let gemm = g.node[0]
        #expect(gemm.input == ["x", "0.weight", "0.bias"])
        #expect(gemm.attribute.first { $0.name == "transB" }?.i == 1, "W is (out, in), as PyTorch's")
    }

    /// One bad weights file per case: the message names the file and what was expected, exit 1, no ONNX file.
    @Test(arguments: [
        ("missing", "missing tensor '4.bias' (expected F32 of shape (10))"),
        ("shape", "tensor '2.weight' has shape (256, 128), expected (128, 256)"),
        ("dtype", "tensor '0.bias' has dtype I64, expected F32"),
        ("extra", "unexpected tensor 'head.weight' (not a parameter of fashion_mnist_mlp)"),
        ("nan", "tensor '0.bias' holds NaN at element 3, expected finite values"),
        ("truncated", "not a safetensors file (only 5 bytes)"),
        ("absent", "cannot read the weights file"),
    ])
    func badWeightsFail(_ kind: String, _ message: String) throws {
        let dir = Paths.tempDir("onnxbad" + kind)
        let w = dir.appendingPathComponent("w.safetensors"), out = dir.appendingPathComponent("m.onnx")
        var values = Self.weights()
        var counters: [String: Int64] = [:]
        switch kind {
        case "missing": values["4.bias"] = nil
        case "shape": values["2.weight"]!.shape = [256, 128]
        case "dtype": values["0.bias"] = nil; counters["0.bias"] = 1
        case "extra": values["head.weight"] = ([1], [0])
        case "nan": values["0.bias"]!.data[3] = .nan
        default: break
        }
        if kind == "truncated" { try Data("short".utf8).write(to: w) }
        if kind != "truncated" && kind != "absent" { try writeSafetensors(w, values, counters: counters) }
        let r = try Self.export(w, to: out)
        #expect(r.status == 1, "\(kind): exit \(r.status)")
        #expect(r.stderr == "nncc: error: \(w.path): \(message)\n" || (kind == "absent" && r.stderr.hasPrefix("nncc: error: \(w.path): \(message)")),
                "\(kind): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path), "\(kind): no ONNX file is written")
    }

    @Test func missingWeightsFlagIsAUsageError() throws {
        let r = try Run.run(Paths.nncc, ["export", Self.mlp.path])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("nncc: error: missing expected argument '--weights <W.safetensors>'"), "\(r.stderr)")
    }
}
