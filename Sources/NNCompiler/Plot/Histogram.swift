import Foundation

/// A histogram of a tensor's values at one step, as TensorBoard's `HistogramProto` holds one: bucket `i` counts
/// the values in (`bucketLimit[i-1]`, `bucketLimit[i]`], the first bucket from −∞; `num` values in all, their
/// `min`, `max`, `sum` and `sumSquares`.
///
/// In a metrics log it is a member of a step line's `"histograms"` object, under its name (a layer's parameter or
/// activation, e.g. `"0.weight"`), with TensorBoard's field names:
///
///     {"step":100,"histograms":{"0.weight":{"min":-0.2,"max":0.3,"num":6,"sum":0.4,"sum_squares":0.09,
///                                           "bucket_limit":[-0.1,0,0.1,0.3],"bucket":[1,2,2,1]}}}
public struct Histogram: Equatable {
    public var min, max, num, sum, sumSquares: Double
    public var bucketLimit: [Double]
    public var bucket: [Double]

    public init(min: Double, max: Double, num: Double, sum: Double, sumSquares: Double, bucketLimit: [Double], bucket: [Double]) {
        (self.min, self.max, self.num, self.sum, self.sumSquares) = (min, max, num, sum, sumSquares)
        (self.bucketLimit, self.bucket) = (bucketLimit, bucket)
    }

    /// The histograms of a step line's `"histograms"` value (absent: none). Errors name the file, line and histogram.
    static func parse(_ value: Any?, path: String, line: Int) throws -> [String: Histogram] {
        guard let value else { return [:] }
        guard let object = value as? [String: Any] else {
            throw PlotError.badHistogram(path: path, line: line, name: "histograms",
                                         reason: "expected an object of histograms by name")
        }
        var out: [String: Histogram] = [:]
        for (name, h) in object {
            func bad(_ reason: String) -> PlotError { .badHistogram(path: path, line: line, name: name, reason: reason) }
            guard let h = h as? [String: Any] else { throw bad("expected an object") }
            func scalar(_ key: String) throws -> Double {
                guard let n = h[key] as? NSNumber, !MetricsLog.isBool(n), let x = MetricsLog.number(n) else {
                    throw bad("expected a finite number '\(key)'")
                }
                return x
            }
            func list(_ key: String) throws -> [Double] {
                guard let a = h[key] as? [Any], !a.isEmpty else { throw bad("expected a non-empty array '\(key)'") }
                return try a.map {
                    guard let n = $0 as? NSNumber, !MetricsLog.isBool(n), let x = MetricsLog.number(n) else {
                        throw bad("'\(key)' holds something other than a finite number")
                    }
                    return x
                }
            }
            let limits = try list("bucket_limit"), counts = try list("bucket")
            if limits.count != counts.count {
                throw bad("'bucket_limit' has \(limits.count) edges and 'bucket' \(counts.count) counts, expected as many")
            }
            if zip(limits, limits.dropFirst()).contains(where: { $0 >= $1 }) { throw bad("'bucket_limit' is not increasing") }
            if counts.contains(where: { $0 < 0 }) { throw bad("'bucket' has a negative count") }
            out[name] = Histogram(min: try scalar("min"), max: try scalar("max"), num: try scalar("num"), sum: try scalar("sum"),
                                  sumSquares: try scalar("sum_squares"), bucketLimit: limits, bucket: counts)
        }
        return out
    }
}

/// A histogram logged at a step.
public struct HistogramPoint: Equatable {
    public var step: Double
    public var histogram: Histogram
}
