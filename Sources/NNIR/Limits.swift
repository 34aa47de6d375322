import Foundation

/// The largest model nncc compiles. The generated C and the runtime index every buffer with 32-bit `int`s, so the
/// parameters together, and every value of the activation arena at the maximum batch, hold at most
/// `maxElements` numbers (2³¹ − 1: 8.6 GB of float32). A model past it is refused when it is compiled, with its
/// size, instead of a trainer that fails (or overflows an index) when it starts.
public enum Limits {
    public static let maxElements = Int(Int32.max)

    /// The number of elements of `dims` when it is at most `maxElements`, else nil (no Int overflow on the way).
    public static func elements(_ dims: [Int]) -> Int? {
        var n = 1
        for d in dims {
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow || p > maxElements { return nil }
            n = p
        }
        return n
    }

    /// "3448068.5 GB": what `dims` take as float32 (computed in Double, so any size is printable).
    public static func gigabytes(_ dims: [Int], bytesPerElement: Int = 4) -> String {
        String(format: "%.1f GB", dims.reduce(Double(bytesPerElement)) { $0 * Double($1) } / 1e9)
    }

    public static var limitDescription: String {
        "nncc's limit of \(maxElements) float32 values (\(gigabytes([maxElements])), the generated C's 32-bit indices)"
    }
}
