#!/usr/bin/env bash
# Prints the path of protoc-gen-swift, the protoc plugin of the swift-protobuf package this repository depends
# on (built once into .build-protoc-gen-swift/), so that generated code matches the SwiftProtobuf library it links
# against. Used by scripts/gen-onnx-proto.sh and scripts/gen-tensorboard-proto.sh; PROTOC_GEN_SWIFT=path skips
# the build. The build's own output goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
if [ -n "${PROTOC_GEN_SWIFT:-}" ]; then echo "$PROTOC_GEN_SWIFT"; exit 0; fi
swift package resolve >/dev/null
checkout=.build/checkouts/swift-protobuf
swift build --package-path "$checkout" --scratch-path .build-protoc-gen-swift --product protoc-gen-swift >&2
echo "$(swift build --package-path "$checkout" --scratch-path .build-protoc-gen-swift --show-bin-path)/protoc-gen-swift"
