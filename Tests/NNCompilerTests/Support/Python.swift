import Foundation

/// Why python3 cannot import `modules` here, or nil when it can: the tests that check nncc's files with another
/// project's reader (onnxruntime, TensorBoard) print this and skip that check. scripts/install-deps.sh installs them.
func pythonLacks(_ modules: [String]) -> String? {
    guard let r = try? Run.run("/usr/bin/env", ["python3", "-c", "import " + modules.joined(separator: ", ")]) else {
        return "python3 cannot be started"
    }
    return r.status == 0 ? nil : "python3 lacks \(modules.joined(separator: ", ")) (scripts/install-deps.sh installs them): "
        + (r.stderr.split(separator: "\n").last.map(String.init) ?? "")
}
