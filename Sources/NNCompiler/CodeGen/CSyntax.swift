/// A small C syntax tree: the emitter builds it, `CPrinter` prints it. Nothing else writes C text.
indirect enum CExpr {
    case id(String)
    case num(Double, float: Bool)     // a floating literal, `1.0f` or `1.0`
    case int(Int)
    case call(String, [CExpr])
    case binary(String, CExpr, CExpr)
    case prefix(String, CExpr)
    case index(CExpr, CExpr)
    case member(CExpr, String)        // a->b
    case dot(CExpr, String)           // a.b
    case ternary(CExpr, CExpr, CExpr)
    case cast(String, CExpr)
    case string(String)
    case initList([CExpr])
    case designated([(String, CExpr)])

    static func + (a: CExpr, b: CExpr) -> CExpr { .binary("+", a, b) }
    static func - (a: CExpr, b: CExpr) -> CExpr { .binary("-", a, b) }
    static func * (a: CExpr, b: CExpr) -> CExpr { .binary("*", a, b) }
    static func / (a: CExpr, b: CExpr) -> CExpr { .binary("/", a, b) }
    subscript(_ i: CExpr) -> CExpr { .index(self, i) }
}

indirect enum CStmt {
    case decl(String, String, CExpr?)                 // type name = init;
    case assign(CExpr, String, CExpr)                 // lhs op= rhs;
    case expr(CExpr)
    case loop(String, CExpr, CExpr, [CStmt])          // for (int v = from; v < to; v++) { … }
    case cond(CExpr, [CStmt])
    case ret(CExpr?)
    case comment(String)
    case block([CStmt])
    case pragma(String)                               // #pragma …, first in a block
    case noted(CStmt, String)                         // a one-line statement with a comment after it: `… /* (n,256) */`
}

/// A parameter of a generated function: `const float *v3 /* (n,256) */`.
struct CParam {
    var type: String      // "const float *", "int ", "float "
    var name: String
    var note: String? = nil
    /// `restrict` in the declaration: nothing the function writes overlaps what this pointer reads.
    var restrict = false

    static func int(_ name: String) -> CParam { CParam(type: "int ", name: name) }
    /// The declaration without its note or `restrict`, as a struct field.
    var field: String { type + name }
    var declaration: String { type + (restrict ? "restrict " : "") + name + (note.map { " /* \($0) */" } ?? "") }
}

struct CFunction {
    var comment: [String]
    var signature: String                             // "static void k0(int n, const float *x)"
    var body: [CStmt]
}

enum CTopLevel {
    case include(String)
    case section(String)                              // a `// ---- title` separator
    case comment([String])
    case function(CFunction)
    case global(String, CExpr)                        // "static const nnrt_param PARAMS[6]", initializer
    case structType(String, [String])                 // typedef struct { field; … } name;
    case line(String)                                 // a preprocessor line such as `#define`
    case enumeration([String], [(name: String, value: Int, note: String?)])   // commented `enum { NAME = value, … };`
}
