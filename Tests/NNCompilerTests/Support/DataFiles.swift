import Foundation

/// Small data files in the formats the trainer reads, written by the tests themselves.
enum DataFiles {
    /// An IDX file: magic (0x0000_08 type, rank), big-endian dimensions, then uint8 data.
    static func idx(_ url: URL, dims: [Int], bytes: [UInt8], magic: UInt32? = nil) throws {
        var d = Data()
        func be32(_ v: UInt32) { d.append(contentsOf: [24, 16, 8, 0].map { UInt8((v >> $0) & 0xff) }) }
        be32(magic ?? (0x0800 | UInt32(dims.count)))
        dims.forEach { be32(UInt32($0)) }
        d.append(contentsOf: bytes)
        try d.write(to: url)
    }

    /// An MNIST-layout folder of random 28×28 images whose label is decided by the mean brightness of the top
    /// half, so that a model can learn something.
    static func mnistFolder(_ dir: URL, train: Int, test: Int, seed: UInt64 = 1) throws {
        var rng = TestRandom(seed: seed)
        for (name, n) in [("train", train), ("t10k", test)] {
            var pixels: [UInt8] = [], labels: [UInt8] = []
            for _ in 0..<n {
                let label = UInt8(rng.next() % 10)
                labels.append(label)
                for p in 0..<784 {
                    let base = p < 392 ? Int(label) * 25 : 128
                    pixels.append(UInt8(max(0, min(255, base + Int(rng.next() % 40) - 20))))
                }
            }
            try idx(dir.appendingPathComponent("\(name)-images-idx3-ubyte"), dims: [n, 28, 28], bytes: pixels)
            try idx(dir.appendingPathComponent("\(name)-labels-idx1-ubyte"), dims: [n], bytes: labels)
        }
    }

    /// A .npy file (format 1.0) with the given dtype descriptor ("<f4", "<i8", …), shape and raw little-endian bytes.
    static func npy(_ url: URL, descr: String, shape: [Int], raw: Data) throws {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(dims), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        d.append(contentsOf: [UInt8(header.count & 0xff), UInt8(header.count >> 8)])
        d.append(contentsOf: Array(header.utf8))
        d.append(raw)
        try d.write(to: url)
    }

    static func npyF32(_ url: URL, shape: [Int], _ values: [Float]) throws {
        try npy(url, descr: "<f4", shape: shape, raw: values.withUnsafeBytes { Data($0) })
    }
}
