/// A 128-bit FNV-1a content hash for cache keys (two 64-bit lanes with different offsets), printed as hex.
public struct ContentHash {
    private var a: UInt64 = 0xcbf2_9ce4_8422_2325
    private var b: UInt64 = 0x6c62_272e_07bb_0142

    public init() {}

    public mutating func update<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        for x in bytes {
            a = (a ^ UInt64(x)) &* 0x0000_0100_0000_01b3
            b = (b ^ UInt64(x)) &* 0x0000_0100_0000_01b3 &+ 1
        }
    }

    public mutating func update(_ s: String) {
        update(s.utf8)
        update([0])   // a separator, so ("ab","c") and ("a","bc") differ
    }

    public var hex: String { [a, b].map { h in String(h, radix: 16).leftPadded(16) }.joined() }
}

extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
