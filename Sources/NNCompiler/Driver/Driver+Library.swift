import Foundation
import NNIR

extension Driver {
    /// `nncc compile --emit=library -o FOLDER`: writes the inference library of `model` into FOLDER (its last
    /// component names the library): NAME.h, NAME.c, example.c, Makefile, README.md and nnrt/, the runtime's files
    /// it compiles. Everything is generated and read before the first file is written; each file is written
    /// through a temporary file and a rename, and files of the folder that nncc does not write are left alone.
    public func writeLibrary(_ model: CompiledModel, to folder: URL) throws {
        let lib = try Library(model, name: folder.lastPathComponent)
        var files: [(path: String, data: Data)] = [
            ("\(lib.name).h", Data(lib.header.utf8)), ("\(lib.name).c", Data(lib.cSource.utf8)),
            ("example.c", Data(lib.example.utf8)), ("Makefile", Data(lib.makefile.utf8)), ("README.md", Data(lib.readme.utf8)),
        ]
        for f in lib.runtimeFiles {
            let url = tools.runtimeDir.appendingPathComponent(f)
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw Diagnostic.error("cannot read \(url.path), a runtime file the library needs (is \(tools.runtimeDir.path) "
                                       + "a complete copy of nncc's runtime/? scripts/install.sh copies runtime/library/ too)")
            }
            files.append(("nnrt/" + f.lastPart, data))
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDir), !isDir.boolValue {
            throw Diagnostic.error("-o \(folder.path): a file is in the way (--emit=library writes a folder)")
        }
        do {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("nnrt"), withIntermediateDirectories: true)
        } catch {
            throw Diagnostic.error("-o \(folder.path): cannot create the folder: \(error.localizedDescription)")
        }
        for f in files {
            let url = folder.appendingPathComponent(f.path)
            let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp.\(getpid())")
            guard FileManager.default.createFile(atPath: tmp.path, contents: f.data), rename(tmp.path, url.path) == 0 else {
                try? FileManager.default.removeItem(at: tmp)
                throw Diagnostic.error("\(url.path): cannot write it: \(String(cString: strerror(errno)))")
            }
        }
        note("wrote the library \(lib.name) into \(folder.path) (build: cd \(folder.path) && make)")
    }
}
