import Foundation

/// nncc's version. The C runtime carries the same number (`NNRT_VERSION` in runtime/cli.c, which
/// `TRAINER --version` prints); CLITests checks that the two agree.
public enum NNCCVersion {
    public static let number = "0.1.0"

    /// `nncc 0.1.0 (commit 51764ec)`: the commit an installed copy was built from (`<prefix>/share/nncc/commit`,
    /// written by scripts/install.sh), or the checkout's HEAD when nncc runs from a build folder inside a git
    /// repository; just the number when neither is known.
    public static func describe(executable: URL = Toolchain.executable) -> String {
        commit(binDir: executable.deletingLastPathComponent()).map { "nncc \(number) (commit \($0))" } ?? "nncc \(number)"
    }

    static func commit(binDir: URL) -> String? {
        let layout = InstallLayout(binDir: binDir)
        if let s = try? String(contentsOf: layout.commitFile, encoding: .utf8) {
            let c = s.trimmingCharacters(in: .whitespacesAndNewlines)
            return c.isEmpty ? nil : c
        }
        guard let repo = Toolchain.findRuntime(from: binDir)?.deletingLastPathComponent(),
              FileManager.default.fileExists(atPath: repo.appendingPathComponent(".git").path),
              let git = Toolchain.which("git"),
              let r = try? Subprocess.run(git, ["-C", repo.path, "rev-parse", "--short", "HEAD"]), r.status == 0
        else { return nil }
        let c = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return c.isEmpty ? nil : c
    }
}
