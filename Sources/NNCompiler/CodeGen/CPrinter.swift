import NNIR

/// Prints the C syntax tree with four-space indentation, llm.c style.
struct CPrinter {
    private(set) var text = ""

    static func print(_ items: [CTopLevel]) -> String {
        var p = CPrinter()
        for item in items { p.top(item) }
        return p.text
    }

    private mutating func emit(_ s: String, _ indent: Int) { text += String(repeating: "    ", count: indent) + s + "\n" }

    private mutating func top(_ item: CTopLevel) {
        switch item {
        case .include(let h): emit(h.hasPrefix("<") ? "#include \(h)" : "#include \"\(h)\"", 0)
        case .section(let title): text += "\n// ---- \(title)\n\n"
        case .comment(let lines): lines.forEach { emit("/* \($0) */", 0) }
        case .line(let s): emit(s, 0)
        case .enumeration(let comment, let items):
            comment.forEach { emit("/* \($0) */", 0) }
            emit("enum {", 0)
            items.forEach { emit("\($0.name) = \($0.value)," + ($0.note.map { " /* \($0) */" } ?? ""), 1) }
            emit("};", 0)
        case .global(let decl, let value): emit("\(decl) = \(expr(value, top: true));", 0)
        case .structType(let name, let fields):
            emit("typedef struct {", 0)
            fields.forEach { emit($0 + ";", 1) }
            emit("} \(name);", 0)
            text += "\n"
        case .function(let f):
            f.comment.forEach { emit("/* \($0) */", 0) }
            emit(f.signature + " {", 0)
            f.body.forEach { stmt($0, 1) }
            emit("}", 0)
            text += "\n"
        }
    }

    private mutating func stmt(_ s: CStmt, _ d: Int) {
        switch s {
        case .decl(let t, let n, let v): emit("\(t) \(n)" + (v.map { " = " + expr($0, top: true) } ?? "") + ";", d)
        case .assign(let l, let op, let r): emit("\(expr(l, top: true)) \(op) \(expr(r, top: true));", d)
        case .expr(let e): emit(expr(e, top: true) + ";", d)
        case .loop(let v, let from, let to, let body):
            emit("for (int \(v) = \(expr(from, top: true)); \(v) < \(expr(to, top: true)); \(v)++) {", d)
            body.forEach { stmt($0, d + 1) }
            emit("}", d)
        case .cond(let c, let body):
            emit("if (\(expr(c, top: true))) {", d)
            body.forEach { stmt($0, d + 1) }
            emit("}", d)
        case .ret(let e): emit("return" + (e.map { " " + expr($0, top: true) } ?? "") + ";", d)
        case .comment(let c): emit("/* \(c) */", d)
        case .pragma(let p): emit("#pragma " + p, d)
        case .noted(let inner, let note):
            stmt(inner, d)
            text.removeLast()   // the newline
            text += " /* \(note) */\n"
        case .block(let body):
            emit("{", d)
            body.forEach { stmt($0, d + 1) }
            emit("}", d)
        }
    }

    /// Nested operators are parenthesized, so the printed C never depends on precedence rules.
    private func expr(_ e: CExpr, top: Bool = false) -> String {
        switch e {
        case .id(let s): return s
        case .num(let v, let f): return literal(v, float: f)
        case .int(let i): return String(i)
        case .call(let f, let args): return "\(f)(" + args.map { expr($0, top: true) }.joined(separator: ", ") + ")"
        case .binary(let op, let a, let b):
            let s = "\(expr(a)) \(op) \(expr(b))"
            return top ? s : "(\(s))"
        case .prefix(let op, let a): return op + expr(a)
        case .index(let a, let i): return "\(expr(a))[\(expr(i, top: true))]"
        case .member(let a, let m): return "\(expr(a))->\(m)"
        case .dot(let a, let m): return "\(expr(a)).\(m)"
        case .ternary(let c, let a, let b):
            let s = "\(expr(c)) ? \(expr(a)) : \(expr(b))"
            return top ? s : "(\(s))"
        case .cast(let t, let a): return "(\(t))\(expr(a))"
        case .string(let s): return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        case .initList(let xs): return "{" + xs.map { expr($0, top: true) }.joined(separator: ", ") + "}"
        case .designated(let fs):
            return "{\n" + fs.map { "    .\($0.0) = \(expr($0.1, top: true)),\n" }.joined() + "}"
        }
    }

    private func literal(_ v: Double, float: Bool) -> String {
        if v.isInfinite { return v > 0 ? "INFINITY" : "-INFINITY" }
        // Swift's description is the shortest text that reads back as the same value.
        var s = float ? Float(v).description : v.description
        if !s.contains(".") && !s.contains("e") { s += ".0" }
        return float ? s + "f" : s
    }
}
