import Foundation
import Testing

/// runtime/'s own C tests (loaders, safetensors, CLI, gradcheck, BLAS core choice), built plain and under
/// ASan+UBSan and TSan by runtime/tests/run.sh, so that `swift test` is the whole suite.
@Suite struct RuntimeTests {
    @Test func cRuntimeTestsPass() throws {
        let r = try Run.run("/bin/bash", [Paths.repo.appendingPathComponent("runtime/tests/run.sh").path])
        let summary = r.stdout.split(separator: "\n").last { $0.contains(" passed, ") } ?? "no summary line"
        #expect(r.status == 0 && summary.hasSuffix(" 0 failed"), "runtime/tests/run.sh: \(summary)\n\(r.stdout.suffix(3000))\n\(r.stderr.suffix(2000))")
    }
}
