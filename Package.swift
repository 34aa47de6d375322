// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "nncc",
    products: [
        .executable(name: "nncc", targets: ["nncc"]),
        // The DSL that model.swiftnn files import; the driver links each model file against it.
        .library(name: "NNDSL", type: .dynamic, targets: ["NNDSL"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .target(name: "NNIR"),
        .target(name: "NNDSL", dependencies: ["NNIR"]),
        .target(name: "NNCompiler", dependencies: ["NNIR"]),
        // ONNX export: the eval-mode forward graph as an ONNX model (the schema compiled by scripts/gen-onnx-proto.sh).
        .target(name: "NNExport", dependencies: [
            "NNCompiler", "NNIR",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        // TensorBoard event files of a metrics log (the schema compiled by scripts/gen-tensorboard-proto.sh).
        .target(name: "NNTensorBoard", dependencies: [
            "NNCompiler",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .target(name: "NNCCLI", dependencies: [
            "NNCompiler", "NNExport", "NNTensorBoard",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "nncc", dependencies: ["NNCCLI"]),
        .testTarget(name: "NNCompilerTests", dependencies: [
            "NNCompiler", "NNIR", "NNCCLI", "NNExport", "NNTensorBoard",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)
