import Foundation
import Testing
@testable import NNCompiler

/// `nncc compile --emit=library`: the exported inference library of each example, built with `cc` alone (no BLAS, no
/// runtime objects), against the trainer's `predict` on the same weights (trained with an explicit --scale and
/// --normalize, so that the stored preprocessing is applied) and the same float32 inputs.
@Suite(.serialized) struct LibraryExportTests {
    /// One example: its trainer, weights, inputs, predict's CSV, and the library folder with the example built.
    final class Fixture: @unchecked Sendable {
        let work: URL, trainer: String, weights: URL, x: URL, folder: URL, rows: Int

        init(_ example: String, normalize: String, rows: Int) throws {
            work = Paths.tempDir("library-\(example)")
            self.rows = rows
            let data = work.appendingPathComponent("data")
            try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
            try DataFiles.mnistFolder(data, train: 256, test: 64)
            let model = Paths.examples.appendingPathComponent("\(example).swiftnn")
            trainer = try compileTrainer(model, into: work)
            weights = work.appendingPathComponent("fmnist.safetensors")
            let t = try Run.run(trainer, ["train", "--data", data.path, "--epochs", "1", "--batch", "64", "--scale", "1/255",
                                          "--normalize", normalize, "--save", weights.path, "--quiet"])
            try #require(t.status == 0, "train: \(t.stderr)")
            x = work.appendingPathComponent("x.npy")
            var rng = TestRandom(seed: 7)  // pixel values as the trainer's files hold them: 0–255, as float32
            let values = (0..<rows * 784).map { _ in Float(rng.next() % 256) + (rng.next() % 2 == 0 ? 0.5 : 0) }
            try DataFiles.npyF32(x, shape: example.contains("cnn") ? [rows, 1, 28, 28] : [rows, 784], values)
            folder = work.appendingPathComponent("fmnist")
            let c = try Run.run(Paths.nncc, ["compile", model.path, "--emit=library", "-o", folder.path])
            try #require(c.status == 0, "nncc compile --emit=library: \(c.stderr)")
        }

        /// The trainer's predict, as CSV rows without the header (%.9g: each float32 reads back as itself).
        func predict(env: [String: String] = [:]) throws -> [String] {
            let out = work.appendingPathComponent("p-\(UUID().uuidString.prefix(6)).csv")
            let r = try Run.run(trainer, ["predict", "--weights", weights.path, "--input", x.path, "--output", out.path, "--quiet"], env: env)
            try #require(r.status == 0, "predict: \(r.stderr)")
            return Array(try String(contentsOf: out, encoding: .utf8).split(separator: "\n").dropFirst().map(String.init))
        }

        /// Builds a program of the folder with cc: `sources` beside the library's, with extra flags.
        func build(_ exe: String, _ sources: [String], flags: [String] = ["-DNNRT_NO_CBLAS"], libs: [String] = []) throws -> String {
            let lib = (try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("nnrt").path))
                .filter { $0.hasSuffix(".c") }.sorted().map { "nnrt/" + $0 }
            let r = try Run.run("/usr/bin/cc", ["-O2", "-std=c11", "-I.", "-Innrt"] + flags + sources + ["fmnist.c"] + lib
                                + ["-o", exe] + libs + ["-lm"], cwd: folder)
            try #require(r.status == 0, "cc \(exe): \(r.stderr)")
            return folder.appendingPathComponent(exe).path
        }

        func example(_ exe: String, env: [String: String] = [:]) throws -> [String] {
            let r = try Run.run(exe, [weights.path, x.path], env: env)
            try #require(r.status == 0, "example: \(r.stderr)")
            return r.stdout.split(separator: "\n").map(String.init)
        }
    }

    static let mlp = Result { try Fixture("fashion_mnist_mlp", normalize: "feature", rows: 300) }
    static let cnn = Result { try Fixture("fashion_mnist_cnn", normalize: "channel", rows: 70) }

    static func fixture(_ name: String) throws -> Fixture { try (name == "mlp" ? mlp : cnn).get() }

    @Test(arguments: ["mlp", "cnn"]) func exampleEqualsPredictBitForBit(_ model: String) throws {
        let f = try Self.fixture(model)
        for file in ["fmnist.h", "fmnist.c", "example.c", "Makefile", "README.md", "nnrt/nnrt_lib.c", "nnrt/gemm.c"] {
            #expect(FileManager.default.fileExists(atPath: f.folder.appendingPathComponent(file).path), "\(file) is missing")
        }
        let source = try String(contentsOf: f.folder.appendingPathComponent("fmnist.c"), encoding: .utf8)
        #expect(!source.contains("train_step") && !source.contains("nnrt_main") && !source.contains("cblas"),
                "fmnist.c holds the predict program only")
        let exe = try f.build("example", ["example.c"])
        let expected = try f.predict(), got = try f.example(exe)
        #expect(expected.count == f.rows && got.count == f.rows)
        let differing = zip(got, expected).enumerated().filter { $0.element.0 != $0.element.1 }
        #expect(differing.isEmpty, "\(differing.count) rows differ; the first: \(differing.first.map { "row \($0.offset): \($0.element)" } ?? "")")
        // NNRT_GEMM=avx2 on both sides: the AVX2 kernels (the default where the CPU lacks AVX-512), the same bits.
        #expect(try f.example(exe, env: ["NNRT_GEMM": "avx2"]) == (try f.predict(env: ["NNRT_GEMM": "avx2"])))
    }

    @Test func makefileBuildsTheExample() throws {
        let f = try Self.fixture("mlp")
        let make = try Run.run("/usr/bin/make", ["-s"], cwd: f.folder)
        try #require(make.status == 0, "make: \(make.stderr)")
        #expect(try f.example(f.folder.appendingPathComponent("example").path) == (try f.predict()))
        _ = try Run.run("/usr/bin/make", ["-s", "clean"], cwd: f.folder)
    }

    /// cblas_sgemm (OpenBLAS, whatever core type it detects) sums in another order: within 1e-6 of predict's.
    @Test(arguments: ["mlp", "cnn"]) func cblasVariantIsWithinOneMillionth(_ model: String) throws {
        let f = try Self.fixture(model)
        let exe = try f.build("example-cblas", ["example.c"], flags: ["-DNNRT_PREFER_CBLAS"], libs: ["-lopenblas"])
        let expected = try f.predict(), got = try f.example(exe)
        try #require(got.count == expected.count)
        var worst = 0.0
        for (a, b) in zip(got, expected) {
            for (u, v) in zip(a.split(separator: ","), b.split(separator: ",")) { worst = max(worst, abs(Double(u)! - Double(v)!)) }
        }
        #expect(worst <= 1e-6, "largest difference \(worst)")
        // Without a BLAS, NNRT_GEMM=blas runs the plain loop (double sums): also within 1e-6.
        let plain = try f.example(try f.build("example", ["example.c"]), env: ["NNRT_GEMM": "blas"])
        for (a, b) in zip(plain, expected) {
            for (u, v) in zip(a.split(separator: ","), b.split(separator: ",")) { #expect(abs(Double(u)! - Double(v)!) <= 1e-6) }
        }
    }

    /// A C program that loads each file named on its command line and prints "code message" per file.
    static let loader = """
    #include <stdio.h>
    #include <stdlib.h>
    #include "fmnist.h"
    int main(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
            char err[256] = "unset";
            fmnist_model *m = (fmnist_model *)1;
            int code = fmnist_load_file(argv[i], &m, err, sizeof err);
            printf("%d %s%s\\n", code, err, code && m ? " (but a handle)" : "");
            if (!code) {
                float x[FMNIST_INPUT_DIM] = {0}, p[FMNIST_OUTPUT_DIM];
                printf("predict(n=-1) %d %s\\n", fmnist_predict(m, x, -1, p), fmnist_message(m));
                printf("predict(x=NULL) %d %s\\n", fmnist_predict(m, NULL, 1, p), fmnist_message(m));
                printf("predict(n=0) %d\\n", fmnist_predict(m, NULL, 0, NULL));
            }
            fmnist_free(code ? NULL : m);
        }
        return 0;
    }
    """

    @Test func badWeightsGiveACodeAndAMessage() throws {
        let f = try Self.fixture("mlp")
        try Self.loader.write(to: f.folder.appendingPathComponent("loader.c"), atomically: true, encoding: .utf8)
        let exe = try f.build("loader", ["loader.c"], flags: ["-DNNRT_NO_CBLAS", "-fsanitize=address,undefined"])
        let good = try readSafetensors(f.weights)
        func variant(_ name: String, _ edit: (inout [String: (shape: [Int], data: [Float])]) -> Void) throws -> String {
            var t = good
            edit(&t)
            let u = f.work.appendingPathComponent(name)
            try writeSafetensors(u, t)
            return u.path
        }
        let renamed = try variant("renamed.safetensors") { t in t["0.weights"] = t.removeValue(forKey: "0.weight") }
        let reshaped = try variant("reshaped.safetensors") { t in t["2.bias"] = (shape: [2, 64], data: t["2.bias"]!.data) }
        let extra = try variant("extra.safetensors") { t in t["5.bias"] = (shape: [1], data: [0]) }
        let nan = try variant("nan.safetensors") { t in t["4.bias"]!.data[3] = .nan }
        let bytes = try Data(contentsOf: f.weights)
        let truncated = f.work.appendingPathComponent("truncated.safetensors"), garbage = f.work.appendingPathComponent("garbage.bin")
        try bytes.prefix(bytes.count - 100).write(to: truncated)
        try Data("not a safetensors file at all, just text".utf8).write(to: garbage)
        let missing = f.work.appendingPathComponent("missing.safetensors").path
        let r = try Run.run(exe, [f.weights.path, renamed, reshaped, extra, nan, truncated.path, garbage.path, missing, f.work.path],
                            cwd: f.folder)
        #expect(r.status == 0, "no crash, no sanitizer report: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let expected = [
            "0 ",
            "predict(n=-1) 4 fmnist_predict: n is negative",
            "predict(x=NULL) 4 fmnist_predict: x is NULL",
            "predict(n=0) 0",
            "3 \(renamed): missing tensor '0.weight' (expected F32 of shape (256, 784))",
            "3 \(reshaped): tensor '2.bias' has shape (2, 64), expected (128,)",
            "3 \(extra): unexpected tensor '5.bias' (not a parameter of fmnist)",
            "3 \(nan): tensor '4.bias' holds NaN at element 3, expected finite values",
            "2 \(truncated.path): corrupt safetensors file (tensor",
            "2 \(garbage.path): corrupt safetensors file (header length",
            "1 \(missing): cannot read the weights file (no such file, or no permission)",
            "1 \(f.work.path): cannot read the weights file (not a regular file)",
        ]
        try #require(lines.count == expected.count, "\(r.stdout)")
        for (l, e) in zip(lines, expected) { #expect(l.hasPrefix(e), "got: \(l)") }
        // The trainer's reader (st_read.c) is the library's: the same message, word for word.
        for (file, line) in [(reshaped, lines[5]), (truncated.path, lines[8])] {
            let p = try Run.run(f.trainer, ["predict", "--weights", file, "--input", f.x.path, "--output", f.work.appendingPathComponent("no.csv").path])
            #expect(p.status == 1 && p.stderr.hasSuffix("error: " + line.dropFirst(2) + "\n"), "trainer: \(p.stderr)library: \(line)")
        }
    }

    /// Two handles on two threads, each predicting every row many times, against one handle on one thread; and the
    /// same weights loaded from memory.
    static let threads = """
    #include <pthread.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include "fmnist.h"
    enum { N = 64, ROUNDS = 20 };
    static float x[N * FMNIST_INPUT_DIM], once[N * FMNIST_OUTPUT_DIM];
    typedef struct { fmnist_model *m; int differ; } job;
    static void *run(void *arg) {
        job *j = arg;
        float p[N * FMNIST_OUTPUT_DIM];
        for (int r = 0; r < ROUNDS; r++) {
            int n = 1 + (r * 37) % N;  // every batch size: a row's result must not depend on it
            if (fmnist_predict(j->m, x, n, p) != FMNIST_OK || memcmp(p, once, sizeof(float) * n * FMNIST_OUTPUT_DIM)) j->differ++;
        }
        return NULL;
    }
    int main(int argc, char **argv) {
        char err[256];
        srand(3);
        for (int i = 0; i < N * FMNIST_INPUT_DIM; i++) x[i] = (float)(rand() % 256);
        FILE *f = fopen(argv[1], "rb");
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        char *buf = malloc(len);
        fseek(f, 0, SEEK_SET);
        if (fread(buf, 1, len, f) != (size_t)len) return 1;
        fmnist_model *a, *b, *c;
        if (fmnist_load_file(argv[1], &a, err, sizeof err) || fmnist_load_file(argv[1], &b, err, sizeof err)) return puts(err), 1;
        if (fmnist_load_memory(buf, len, &c, err, sizeof err)) return puts(err), 1;
        printf("truncated in memory: %d\\n", fmnist_load_memory(buf, len - 7, &c, err, sizeof err) == FMNIST_ERR_FORMAT && !c);
        fmnist_load_memory(buf, len, &c, err, sizeof err);
        free(buf);
        fclose(f);
        fmnist_predict(c, x, N, once);
        job ja = {a, 0}, jb = {b, 0};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, run, &ja);
        pthread_create(&tb, NULL, run, &jb);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        printf("differing calls: %d %d\\n", ja.differ, jb.differ);
        fmnist_free(a), fmnist_free(b), fmnist_free(c);
        return 0;
    }
    """

    @Test(arguments: ["mlp", "cnn"]) func twoHandlesOnTwoThreadsAgree(_ model: String) throws {
        let f = try Self.fixture(model)
        try Self.threads.write(to: f.folder.appendingPathComponent("threads.c"), atomically: true, encoding: .utf8)
        let exe = try f.build("threads", ["threads.c"], flags: ["-DNNRT_NO_CBLAS", "-pthread"], libs: ["-pthread"])
        let r = try Run.run(exe, [f.weights.path])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout == "truncated in memory: 1\ndiffering calls: 0 0\n")
    }

    @Test func badLibraryNameIsAnError() throws {
        let work = Paths.tempDir()
        let model = Paths.examples.appendingPathComponent("fashion_mnist_mlp.swiftnn")
        let r = try Run.run(Paths.nncc, ["compile", model.path, "--emit=library", "-o", work.appendingPathComponent("2fast-mnist").path])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("nncc: error: --emit=library: the library's name '2fast-mnist'"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: work.appendingPathComponent("2fast-mnist").path), "no partial output")
        let file = work.appendingPathComponent("fmnist")
        try Data("a file in the way".utf8).write(to: file)
        let inTheWay = try Run.run(Paths.nncc, ["compile", model.path, "--emit=library", "-o", file.path])
        #expect(inTheWay.status == 1 && inTheWay.stderr == "nncc: error: -o \(file.path): a file is in the way (--emit=library writes a folder)\n",
                "\(inTheWay.stderr)")
    }
}
