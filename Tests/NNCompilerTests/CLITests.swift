import Foundation
import Testing
@testable import NNCompiler

/// The nncc executable as a user meets it: `--version` (and the trainer's), and nncc found on the PATH through a
/// symlink, installed into a prefix, or copied alone (which must say how to point it at its parts).
@Suite struct CLITests {
    static let sine = Paths.examples.appendingPathComponent("sine_regression.swiftnn").path

    @Test func versionNamesTheNumberAndTheCommit() throws {
        let r = try Run.run(Paths.nncc, ["--version"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("nncc \(NNCCVersion.number)"), "\(r.stdout)")
        // The tests run from a build folder inside the git checkout, so the commit is known.
        #expect(r.stdout.contains("(commit "), "\(r.stdout)")
        #expect(try Run.run(Paths.nncc, ["--help"]).stdout.contains("--version"))
    }

    /// The trainer's runtime carries nncc's version number (runtime/cli.c's NNRT_VERSION).
    @Test func trainerVersionMatchesNncc() throws {
        let dir = Paths.tempDir()
        let trainer = try compileTrainer(URL(fileURLWithPath: Self.sine), into: dir)
        let r = try Run.run(trainer, ["--version"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "sine_regression: trainer of the model 'sine_regression', nncc runtime \(NNCCVersion.number)\n",
                "\(r.stdout)")
    }

    /// scripts/install.sh's default: a symlink on the PATH. nncc resolves it and finds the DSL library and
    /// runtime/ of the checkout it was built in.
    @Test func symlinkedNnccFindsItsParts() throws {
        let dir = Paths.tempDir()
        let bin = dir.appendingPathComponent("bin")
        let install = try Run.run(Paths.repo.appendingPathComponent("scripts/install.sh").path,
                                  ["--build-dir", Paths.products.path, "--bin-dir", bin.path])
        #expect(install.status == 0, "\(install.stderr)")
        let link = bin.appendingPathComponent("nncc").path
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link).hasSuffix("/nncc"))
        let r = try Run.run(link, ["compile", Self.sine, "--emit", "graph"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("// forward graph of sine_regression"), "\(r.stdout.prefix(200))")
    }

    /// `install.sh --prefix P` copies nncc, the DSL library and the runtime's sources; the copy compiles a
    /// working trainer with no checkout and no NNCC_* variable, and --version names the commit it came from.
    @Test func installedIntoAPrefixCompilesATrainer() throws {
        let dir = Paths.tempDir()
        let prefix = dir.appendingPathComponent("prefix")
        let install = try Run.run(Paths.repo.appendingPathComponent("scripts/install.sh").path,
                                  ["--build-dir", Paths.products.path, "--prefix", prefix.path])
        #expect(install.status == 0, "\(install.stderr)")
        for f in ["bin/nncc", "lib/nncc/libNNDSL.so", "lib/nncc/Modules/NNDSL.swiftmodule",
                  "share/nncc/runtime/nnrt_model.h", "share/nncc/runtime/train.c", "share/nncc/commit"] {
            #expect(FileManager.default.fileExists(atPath: prefix.appendingPathComponent(f).path), "\(f) missing")
        }
        let nncc = prefix.appendingPathComponent("bin/nncc").path
        let version = try Run.run(nncc, ["--version"])
        let commit = try String(contentsOf: prefix.appendingPathComponent("share/nncc/commit"), encoding: .utf8)
        #expect(version.stdout == "nncc \(NNCCVersion.number) (commit \(commit.trimmingCharacters(in: .whitespacesAndNewlines)))\n",
                "\(version.stdout)")
        let out = dir.appendingPathComponent("sine").path
        let r = try Run.run(nncc, ["compile", Self.sine, "-o", out, "--verbose"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Run.run(out, ["--help"]).status == 0)
    }

    /// A copied nncc with nothing beside it says what it looked for and which variable to set, and works once
    /// NNCC_RUNTIME and NNCC_DSL_DIR are set.
    @Test func copiedAloneSaysWhatToSet() throws {
        let dir = Paths.tempDir()
        let nncc = dir.appendingPathComponent("nncc").path
        try FileManager.default.copyItem(atPath: Paths.nncc, toPath: nncc)
        let r = try Run.run(nncc, ["compile", Self.sine, "--emit", "graph"])
        #expect(r.status == 1, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr == "nncc: error: cannot find the C runtime: no \(dir.deletingLastPathComponent().path)/share/nncc/runtime "
                + "and no runtime/ above \(dir.path); install with scripts/install.sh --prefix, or set NNCC_RUNTIME to "
                + "nncc's runtime/ folder\n", "\(r.stderr)")
        let env = ["NNCC_RUNTIME": Paths.repo.appendingPathComponent("runtime").path, "NNCC_DSL_DIR": Paths.products.path]
        let ok = try Run.run(nncc, ["compile", Self.sine, "--emit", "graph"], env: env)
        #expect(ok.status == 0, "\(ok.stderr)")
        let wrong = try Run.run(nncc, ["compile", Self.sine, "--emit", "graph"], env: ["NNCC_RUNTIME": dir.path])
        #expect(wrong.status == 1 && wrong.stderr.contains("NNCC_RUNTIME=\(dir.path) is not nncc's C runtime"), "\(wrong.stderr)")
    }
}
