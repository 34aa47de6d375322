import Foundation
import NNIR

extension Driver {
    /// `mpicc --showme:compile` and `--showme:link`: Open MPI's include and library flags, for `nncc compile --mpi`
    /// (clang builds, with the flags mpicc would add). Debian's openmpi-bin and libopenmpi-dev provide mpicc.
    static func mpiFlags() throws -> (compile: [String], link: [String]) {
        guard let mpicc = Toolchain.which("mpicc") else {
            throw Diagnostic.error("--mpi: mpicc is not on the PATH: install Open MPI (apt-get install openmpi-bin "
                                   + "libopenmpi-dev, or scripts/install-deps.sh in nncc's repository)")
        }
        func show(_ what: String) throws -> [String] {
            let r = try Subprocess.run(mpicc, ["--showme:\(what)"])
            guard r.status == 0 else {
                throw Diagnostic.error("--mpi: \(mpicc) --showme:\(what) failed (is it Open MPI's mpicc?): "
                                       + r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            return r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        }
        return (try show("compile"), try show("link"))
    }
}
