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
    ],
    targets: [
        .target(name: "NNIR"),
        .target(name: "NNDSL", dependencies: ["NNIR"]),
        .target(name: "NNCompiler", dependencies: ["NNIR"]),
        .target(name: "NNCCLI", dependencies: [
            "NNCompiler",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "nncc", dependencies: ["NNCCLI"]),
        .testTarget(name: "NNCompilerTests", dependencies: ["NNCompiler", "NNIR", "NNCCLI"]),
    ],
    swiftLanguageModes: [.v5]
)
