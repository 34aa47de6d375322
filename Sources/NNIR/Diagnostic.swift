/// Something nncc tells a person: an error (or a warning), what went wrong, the site in the model file it is
/// about when there is one, and notes that follow it. Every stage reports with it, from the DSL's shape errors
/// to the plot command's unreadable log; nncc prints it as `file:line:col: error: …` with a site and
/// `nncc: error: …` without one (`Report` in NNCCLI), and the DSL prints it the same way.
///
/// ```swift
/// throw Diagnostic.error("the graph has no scalar loss to differentiate")
/// throw Diagnostic.error("Linear(784, 256) expects input (n,784), got (n,10)", at: site)
/// ```
public struct Diagnostic: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Level: String, Sendable { case error, warning, note }

    public var level: Level
    public var message: String
    public var site: SourceSite?
    /// Printed after the message, one line each (`note: …`).
    public var notes: [String]
    /// The message is already in swiftc's `file:line:col: error: …` form, with its snippets (swiftc's own
    /// diagnostics of a model file): printed as it is.
    public var isPreformatted = false

    public init(_ level: Level, _ message: String, at site: SourceSite? = nil, notes: [String] = []) {
        self.level = level
        self.message = message
        self.site = site
        self.notes = notes
    }

    public static func error(_ message: String, at site: SourceSite? = nil, notes: [String] = []) -> Diagnostic {
        Diagnostic(.error, message, at: site, notes: notes)
    }

    /// Diagnostics another tool wrote (swiftc's), passed on unchanged.
    public static func preformatted(_ text: String) -> Diagnostic {
        var d = Diagnostic(.error, text)
        d.isPreformatted = true
        return d
    }

    /// `file:line:col: error: message`, or `error: message` without a site, then the notes.
    public var description: String {
        if isPreformatted { return message }
        return (site.map { "\($0): " } ?? "") + "\(level.rawValue): \(message)" + notes.map { "\nnote: \($0)" }.joined()
    }
}
