import Foundation
import Testing

/// `TRAINER filters`: the first layer's weights as a PNG grid, on fixed weights. Each picture's size and color type
/// from its header; every pixel against the NumPy reference of the grid (Tests/Reference/png_check.py, which decodes
/// the PNG itself; skipped with the reason when Python lacks numpy); bad command lines and models without an image.
@Suite(.serialized) struct FiltersTests {
    static let work = Paths.tempDir("filters")
    static let checker = Paths.repo.appendingPathComponent("Tests/Reference/png_check.py").path
    static let pythonMissing = pythonLacks(["numpy"])

    /// A trainer for `layers` on `input`, and a weights file of fixed values for `params` (name → shape); the
    /// filter `constant` of the first parameter is one value throughout (drawn mid-gray).
    static func trainer(_ name: String, input: String, _ layers: String, _ params: [(String, [Int])], constant: Int? = nil,
                        sourceLocation: SourceLocation = #_sourceLocation) throws -> (exe: String, weights: URL) {
        let model = try writeModel(name, """
            import NNDSL
            let model = Sequential {
            \(layers)
            }
            train(model, input: \(input), loss: .crossEntropy, optimizer: SGD(learningRate: 0.1), batchSize: 4, epochs: 1, seed: 0)
            """, in: work)
        let exe = try compileTrainer(model, into: work, sourceLocation: sourceLocation)
        var rng = TestRandom(seed: 11)
        var tensors: [String: (shape: [Int], data: [Float])] = [:]
        for (i, (key, shape)) in params.enumerated() {
            var data = (0..<shape.reduce(1, *)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 2000 }
            if i == 0, let f = constant {
                let per = data.count / shape[0]
                for j in f * per..<(f + 1) * per { data[j] = 0.25 }
            }
            tensors[key] = (shape, data)
        }
        let weights = work.appendingPathComponent(name + ".safetensors")
        try writeSafetensors(weights, tensors)
        return (exe, weights)
    }

    /// Runs filters, checks the PNG's header and its pixels against the reference of `param` read as (C, H, W).
    static func draw(_ t: (exe: String, weights: URL), _ param: String, _ chw: [Int], size: (Int, Int), rgb: Bool, summary: String,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let png = work.appendingPathComponent(t.weights.deletingPathExtension().lastPathComponent + ".png")
        let r = try Run.run(t.exe, ["filters", "--weights", t.weights.path, "-o", png.path])
        try #require(r.status == 0, "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stdout == "wrote \(png.path): \(summary), \(size.0) x \(size.1) pixels\n", sourceLocation: sourceLocation)
        let b = [UInt8](try Data(contentsOf: png))
        let be32 = { (at: Int) in (0..<4).reduce(0) { $0 << 8 | Int(b[at + $1]) } }
        #expect(Array(b.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] && String(decoding: b[12..<16], as: UTF8.self) == "IHDR",
                sourceLocation: sourceLocation)
        #expect(be32(16) == size.0 && be32(20) == size.1 && b[24] == 8 && b[25] == (rgb ? 2 : 0), "IHDR \(b[16..<26])", sourceLocation: sourceLocation)
        if let why = pythonMissing {
            print("FiltersTests: skipped the pixel check of \(png.lastPathComponent): \(why)")
            return
        }
        let c = try Run.run("/usr/bin/env", ["python3", checker, png.path, t.weights.path, param] + chw.map(String.init))
        #expect(c.status == 0, "\(c.stdout)\(c.stderr)", sourceLocation: sourceLocation)
        print("FiltersTests: \(c.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    /// Conv2d(3, 5, 5): RGB tiles, 5x zoom, 3 columns; one constant filter.
    @Test func rgbConvFilters() throws {
        let t = try Self.trainer("rgb", input: "[3, 8, 8]", "Conv2d(3, 5, kernelSize: 5); ReLU(); Flatten(); Linear(80, 3)",
                                 [("0.weight", [5, 3, 5, 5]), ("0.bias", [5]), ("3.weight", [3, 80]), ("3.bias", [3])], constant: 2)
        try Self.draw(t, "0.weight", [3, 5, 5], size: (79, 53), rgb: true,
                      summary: "5 filters of '0.weight' as 25 x 25 RGB tiles (5x zoom) in a 2 x 3 grid")
    }

    /// Conv2d(2, 3, [3, 2]): two channels, so one row of gray tiles per filter.
    @Test func twoChannelConvFilters() throws {
        let t = try Self.trainer("two", input: "[2, 6, 6]", "Conv2d(2, 3, kernelSize: [3, 2]); ReLU(); Flatten(); Linear(60, 2)",
                                 [("0.weight", [3, 2, 3, 2]), ("0.bias", [3]), ("3.weight", [2, 60]), ("3.bias", [2])])
        try Self.draw(t, "0.weight", [2, 3, 2], size: (39, 85), rgb: false,
                      summary: "3 filters of '0.weight' as 18 x 27 gray tiles (9x zoom) in a 3 x 2 grid")
    }

    /// An MLP on a (1, 4, 6) image: the first Linear layer's rows as 4 x 6 images.
    @Test func linearRowsAsTheInputImage() throws {
        let t = try Self.trainer("image", input: "[1, 4, 6]", "Flatten(); Linear(24, 7); ReLU(); Linear(7, 2)",
                                 [("1.weight", [7, 24]), ("1.bias", [7]), ("3.weight", [2, 7]), ("3.bias", [2])])
        try Self.draw(t, "1.weight", [1, 4, 6], size: (76, 52), rgb: false,
                      summary: "7 filters of '1.weight' as 24 x 16 gray tiles (4x zoom) in a 3 x 3 grid")
    }

    /// An MLP on 784 features (Fashion-MNIST's): rows as 28 x 28 gray images.
    @Test func mlpRowsAsSquareImages() throws {
        let t = try Self.trainer("square", input: "784", "Linear(784, 3); ReLU(); Linear(3, 2)",
                                 [("0.weight", [3, 784]), ("0.bias", [3]), ("2.weight", [2, 3]), ("2.bias", [2])], constant: 1)
        try Self.draw(t, "0.weight", [1, 28, 28], size: (59, 59), rgb: false,
                      summary: "3 filters of '0.weight' as 28 x 28 gray tiles (1x zoom) in a 2 x 2 grid")
    }

    @Test func badCommandLinesAndModels() throws {
        let flat = try Self.trainer("flat", input: "10", "Linear(10, 2)", [("0.weight", [2, 10]), ("0.bias", [2])])
        let out = Self.work.appendingPathComponent("bad.png").path
        let cases: [([String], Int32, String)] = [
            (["--weights", flat.weights.path, "-o", out], 1,
             "error: filters: model 'flat' takes 10 features, not an image (an image shape, or a square number of features, is needed to draw the rows of its first Linear layer '0.weight')"),
            (["--weights", flat.weights.path], 2, "error: filters: needs --weights W and --output F.png"),
            (["--weights", flat.weights.path, "--output", "f.jpg"], 2, "error: --output f.jpg: expected a .png file name"),
            (["--weights", Self.work.appendingPathComponent("none.safetensors").path, "-o", out], 1, "none.safetensors"),
            (["--weights", flat.weights.path, "-o", out, "--batch", "2"], 2, "flag '--batch' does not apply to 'filters'"),
        ]
        for (args, status, message) in cases {
            let r = try Run.run(flat.exe, ["filters"] + args)
            #expect(r.status == status && r.stderr.hasPrefix("\(URL(fileURLWithPath: flat.exe).lastPathComponent): error: ") && r.stderr.contains(message),
                    "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "no picture for \(args)")
        }
        let t = try Self.trainer("image", input: "[1, 4, 6]", "Flatten(); Linear(24, 7); ReLU(); Linear(7, 2)",
                                 [("1.weight", [7, 24]), ("1.bias", [7]), ("3.weight", [2, 7]), ("3.bias", [2])])
        let missingDir = Self.work.appendingPathComponent("no/such/dir/f.png").path
        let r = try Run.run(t.exe, ["filters", "--weights", t.weights.path, "-o", missingDir])
        #expect(r.status == 1 && r.stderr.contains("f.png: cannot create a file in that directory"), "\(r.stderr)")
    }
}
