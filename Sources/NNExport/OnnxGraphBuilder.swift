import Foundation
import SwiftProtobuf

/// Builds an ONNX `GraphProto` node by node: each node gets a fresh output name, constants become initializers
/// (each distinct one once), and attributes are written with the helpers below.
struct OnnxGraphBuilder {
    var graph = Onnx_GraphProto()
    private var used = Set<String>()
    private var constants: [String: String] = [:]   // a constant's key → its initializer's name

    /// A value name not used yet: `hint`, or `hint_2`, `hint_3`, …
    mutating func fresh(_ hint: String) -> String {
        var name = hint, k = 1
        while used.contains(name) {
            k += 1
            name = "\(hint)_\(k)"
        }
        used.insert(name)
        return name
    }

    /// Appends a node with one output and returns the output's name. `doc` says where in model.swiftnn the op
    /// came from.
    @discardableResult
    mutating func node(_ opType: String, _ inputs: [String], _ attributes: [Onnx_AttributeProto] = [],
                       output hint: String, doc: String? = nil) -> String {
        let out = fresh(hint)
        var n = Onnx_NodeProto()
        n.opType = opType
        n.name = "\(opType)_\(graph.node.count)"
        n.input = inputs
        n.output = [out]
        n.attribute = attributes
        if let doc { n.docString = doc }
        graph.node.append(n)
        return out
    }

    /// A float32 initializer of the given shape (`[]` for a scalar) under `name`.
    mutating func floats(_ name: String, dims: [Int], _ values: [Float]) -> String {
        var t = Onnx_TensorProto()
        t.name = fresh(name)
        t.dims = dims.map(Int64.init)
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        // Little-endian raw bytes, as the ONNX spec stores raw_data on every platform.
        t.rawData = values.withUnsafeBufferPointer { buf in
            Data(buf.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
        }
        graph.initializer.append(t)
        return t.name
    }

    /// A float32 scalar constant, shared by every use of the same value.
    mutating func scalar(_ v: Float) -> String {
        let key = "f\(v.bitPattern)"
        if let name = constants[key] { return name }
        let name = floats("const_\(constants.count)", dims: [], [v])
        constants[key] = name
        return name
    }

    /// A 1-d int64 constant (axes, shapes, pads, slice bounds), shared by every use of the same list.
    mutating func int64s(_ values: [Int]) -> String {
        let key = "i" + values.map(String.init).joined(separator: ",")
        if let name = constants[key] { return name }
        var t = Onnx_TensorProto()
        t.name = fresh("ints_\(constants.count)")
        t.dims = [Int64(values.count)]
        t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        t.int64Data = values.map(Int64.init)
        graph.initializer.append(t)
        constants[key] = t.name
        return t.name
    }

    /// A float32 graph input or output with a symbolic batch dimension `batch` (nil dims are symbolic).
    static func valueInfo(_ name: String, _ dims: [Int?]) -> Onnx_ValueInfoProto {
        var v = Onnx_ValueInfoProto()
        v.name = name
        var t = Onnx_TypeProto.Tensor()
        t.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        t.shape.dim = dims.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            if let d { dim.dimValue = Int64(d) } else { dim.dimParam = "batch" }
            return dim
        }
        v.type.tensorType = t
        return v
    }
}

/// ONNX node attributes.
enum Attr {
    static func int(_ name: String, _ v: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(v)
        return a
    }
    static func float(_ name: String, _ v: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = v
        return a
    }
    static func ints(_ name: String, _ v: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = v.map(Int64.init)
        return a
    }
}
