import Foundation
import Testing
@testable import NNCompiler

/// The hot loops of the generated C vectorize with the flags the driver builds trainers with (issue #4: "clang
/// flags chosen on purpose … with vectorization confirmed on the hot loops"). clang is asked for its
/// loop-vectorize and SLP remarks on each example's C; every optimizer update and every GEMM kernel with an
/// epilogue loop (bias + activation forward; mask, bias gradient and friends backward) must contain a loop clang
/// reports as vectorized, or a statement of one that it packed into vectors (SLP). Without -fno-math-errno, for
/// one, the Adam loop's sqrtf keeps it scalar (0.55 against 0.15 ms per step) and this test fails; without
/// `restrict` on the bias, the 10-wide `+ b` of a last layer stays scalar on AMD Zen 2. The GEMMs themselves are
/// vector code in runtime/gemm_avx2.c and gemm_avx512.c (tested in runtime/tests).
@Suite struct VectorizationTests {
    /// Functions of the training program, by name, with their line span in the C source.
    static func trainFunctions(_ c: String) -> [(name: String, lines: ClosedRange<Int>, body: String)] {
        var out: [(String, ClosedRange<Int>, String)] = []
        var open: (String, Int)?
        var body: [String] = []
        for (i, line) in c.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if open == nil, line.hasPrefix("static void train_k"), let paren = line.firstIndex(of: "(") {
                open = (String(line[line.index(line.startIndex, offsetBy: 12)..<paren]), i + 1)
                body = []
            }
            if let (name, start) = open {
                body.append(String(line))
                if line == "}" { out.append((name, start...(i + 1), body.joined(separator: "\n"))); open = nil }
            }
        }
        return out
    }

    @Test(arguments: ["fashion_mnist_mlp", "fashion_mnist_resmlp"])
    func hotLoopsVectorize(_ example: String) throws {
        let dir = Paths.tempDir("vectorize-\(example)")
        let c = dir.appendingPathComponent("model.c")
        let emit = try Run.run(Paths.nncc, ["compile", Paths.examples.appendingPathComponent("\(example).swiftnn").path,
                                            "--emit", "c", "-o", c.path])
        try #require(emit.status == 0, "\(emit.stderr)")
        let tools = try Paths.toolchain()
        let r = try Run.run(tools.clang, Driver.cFlags + ["-I", tools.runtimeDir.path, "-Rpass=loop-vectorize|slp-vectorizer",
                                                          "-c", c.path, "-o", dir.appendingPathComponent("model.o").path])
        try #require(r.status == 0, "\(r.stderr)")
        // "…/model.c:273:5: remark: vectorized loop (vectorization width: 8, interleaved count: 1) [-Rpass=loop-vectorize]",
        // or, for a loop clang unrolls whole (the 10 columns of a last layer) and packs into vectors:
        // "…/model.c:94:22: remark: Stores SLP vectorized with cost -28 and with tree size 4 [-Rpass=slp-vectorizer]"
        let vectorized = Set(r.stderr.split(separator: "\n").compactMap { line -> Int? in
            guard line.contains("remark: vectorized loop") || line.contains("remark: Stores SLP vectorized"),
                  let range = line.range(of: "model.c:") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        })
        let source = try String(contentsOf: c, encoding: .utf8)
        let hot = Self.trainFunctions(source).filter { f in
            !f.name.hasSuffix("_chunk") && !f.name.contains("pair")
                && (f.name.hasSuffix("_update") || f.body.contains("nnrt_sgemm(") && f.body.contains("for ("))
        }
        #expect(hot.contains { $0.name.hasSuffix("_update") }, "no optimizer update found in \(example)")
        #expect(hot.count >= 4, "expected the GEMM epilogues and the update, found \(hot.map(\.name))")
        for f in hot {
            #expect(f.lines.contains { vectorized.contains($0) },
                    "\(example): no loop of \(f.name) (lines \(f.lines)) was vectorized with \(Driver.cFlags.joined(separator: " "))")
        }
    }
}
