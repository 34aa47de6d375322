import Foundation
import NNCompiler
import NNTensorBoard
import SwiftProtobuf
import Testing

/// `nncc plot --tensorboard`: CRC-32C against published vectors, TFRecord framing (corruption detected), the events
/// decoded back with SwiftProtobuf against the JSONL, the run read by TensorBoard's own reader
/// (Tests/Reference/tensorboard_check.py, skipped with the reason when Python lacks tensorboard), bad input.
@Suite struct TensorBoardTests {
    /// PlotTests' log (steps with a null, epochs, a step logged twice, a profile line) plus a scalar only some
    /// steps have, a boolean (not a metric), and histograms at two steps.
    static let jsonl: String = PlotTests.jsonl + [
        "{\"step\":60,\"grad_norm\":1.5,\"clipped\":true}",
        "{\"step\":50,\"histograms\":{\"0.weight\":{\"min\":-0.2,\"max\":0.3,\"num\":6,\"sum\":0.4,\"sum_squares\":0.09,"
            + "\"bucket_limit\":[-0.1,0,0.1,0.3],\"bucket\":[1,2,2,1]},\"act.1\":{\"min\":0,\"max\":2,\"num\":3,\"sum\":3,"
            + "\"sum_squares\":5,\"bucket_limit\":[1e-12,1,2],\"bucket\":[1,1,1]}}}",
        "{\"step\":100,\"histograms\":{\"0.weight\":{\"min\":-0.5,\"max\":0.5,\"num\":2,\"sum\":0,\"sum_squares\":0.5,"
            + "\"bucket_limit\":[0,0.5],\"bucket\":[1,1]}}}",
    ].joined(separator: "\n") + "\n"

    static let checker = Paths.repo.appendingPathComponent("Tests/Reference/tensorboard_check.py").path

    /// Why TensorBoard's reader cannot run here, or nil when it can.
    static let pythonMissing = pythonLacks(["numpy", "tensorboard"])

    @Test func crc32cMatchesPublishedVectors() {
        // RFC 3720 (iSCSI) B.4 and the usual check value; the masked form as TensorBoard's reader computes it.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }) == 0x113F_DB5C)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.masked(Array("123456789".utf8)) == 0xC78A_B0E5)
    }

    @Test func tfRecordFramesAndDetectsCorruption() throws {
        let payloads = [Data("hello".utf8), Data(), Data((0..<300).map { UInt8($0 % 256) })]
        var file = Data()
        for p in payloads { file.append(TFRecord.frame(p)) }
        #expect(file.count == payloads.map { $0.count + 16 }.reduce(0, +))
        #expect(Array(file.prefix(8)) == [5, 0, 0, 0, 0, 0, 0, 0], "the length, little-endian")
        #expect(try TFRecord.records(in: file) == payloads)
        var flipped = file
        flipped[14] ^= 1  // inside "hello"
        #expect(throws: TFRecord.FormatError(offset: 0, reason: "data CRC mismatch")) { try TFRecord.records(in: flipped) }
        var length = file
        length[21] ^= 1  // the second record's length
        #expect(throws: TFRecord.FormatError(offset: 21, reason: "length CRC mismatch")) { try TFRecord.records(in: length) }
        #expect(throws: TFRecord.FormatError(offset: 0, reason: "truncated record (5 bytes claimed)")) {
            try TFRecord.records(in: file.prefix(20))
        }
    }

    /// The events decoded with SwiftProtobuf: the file version first, then every number of the JSONL as a float32
    /// under its tag at its step, histograms field by field.
    @Test func eventsHoldEveryMetric() throws {
        let log = try MetricsLog(jsonl: Self.jsonl, path: "m.jsonl")
        let bytes = try TensorBoardRun(log, wallTime: 1.5e9).serialized()
        let events = try TFRecord.records(in: bytes).map { try Tensorboard_Event(serializedBytes: $0) }
        #expect(events.first?.fileVersion == "brain.Event:2" && events.allSatisfy { $0.wallTime == 1.5e9 })
        var scalars: [String: [Int64: Float]] = [:], histograms: [String: [Int64: Tensorboard_HistogramProto]] = [:]
        for e in events.dropFirst() {
            for v in e.summary.value {
                switch v.value {
                case let .simpleValue(x)?: #expect(scalars[v.tag, default: [:]].updateValue(x, forKey: e.step) == nil, "\(v.tag) once a step")
                case let .histo(h)?: histograms[v.tag, default: [:]][e.step] = h
                default: Issue.record("\(v.tag): neither a scalar nor a histogram")
                }
            }
        }
        #expect(Set(scalars.keys) == ["step/loss", "step/lr", "step/grad_norm", "epoch/train_loss", "epoch/val_loss", "epoch/val_acc",
                                      "epoch/test_loss", "epoch/test_acc", "epoch/seconds"])
        // Every value against the JSONL itself, parsed here: the last line of a step or epoch wins, null is left out.
        var want: [String: [Int64: Float]] = [:]
        for line in Self.jsonl.split(separator: "\n") {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let (x, prefix, skip): (Any?, String, Set<String>) = o["step"] != nil ? (o["step"], "step/", ["step", "epoch"]) : (o["epoch"], "epoch/", ["epoch"])
            guard let x = x as? Int else { continue }
            for (k, v) in o where !skip.contains(k) && k != "clipped" {
                if let n = v as? Double { want[prefix + k, default: [:]][Int64(x)] = Float(n) }
            }
        }
        #expect(scalars == want)
        #expect(scalars["step/loss"]?[7] == nil && scalars["step/loss"]?.count == 119, "the null loss at step 7 is left out")
        #expect(scalars["step/loss"]?[40] == 0.5, "the later line of a step logged twice wins")
        #expect(Set(histograms.keys) == ["histograms/0.weight", "histograms/act.1"])
        let h = try #require(histograms["histograms/0.weight"]?[50])
        #expect([h.min, h.max, h.num, h.sum, h.sumSquares] == [-0.2, 0.3, 6, 0.4, 0.09])
        #expect(h.bucketLimit == [-0.1, 0, 0.1, 0.3] && h.bucket == [1, 2, 2, 1])
        #expect(histograms["histograms/0.weight"]?[100]?.bucket == [1, 1] && histograms["histograms/act.1"]?[100] == nil)
        let steps = events.dropFirst().map(\.step)
        #expect(Array(steps.prefix(120)) == Array(1...120), "one event per step, in order, then the epochs")
        #expect(Array(steps.suffix(3)) == [1, 2, 3])
    }

    /// The CLI writes the run; TensorBoard's own event reader reads it back and finds every number of the JSONL.
    @Test func tensorBoardReadsTheRun() throws {
        let dir = Paths.tempDir("tensorboard")
        let metrics = dir.appendingPathComponent("m.jsonl"), run = dir.appendingPathComponent("runs/a")
        try Self.jsonl.write(to: metrics, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        let stale = run.appendingPathComponent("events.out.tfevents.1.old.nncc"), foreign = run.appendingPathComponent("events.out.tfevents.1.other")
        try Data().write(to: stale)
        try Data().write(to: foreign)
        let r = try Run.run(Paths.nncc, ["plot", "--tensorboard", run.path, metrics.path])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("wrote \(run.path)/events.out.tfevents.") && r.stdout.contains(" (123 events)"), "\(r.stdout)")
        let names = try FileManager.default.contentsOfDirectory(atPath: run.path)
        #expect(!names.contains(stale.lastPathComponent), "an earlier nncc event file is replaced")
        #expect(names.contains(foreign.lastPathComponent), "another writer's file is left alone")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("m.svg").path), "no SVG without -o")
        try FileManager.default.removeItem(at: foreign)
        if let why = Self.pythonMissing {
            print("TensorBoardTests: skipped the check with TensorBoard's reader: \(why)")
            return
        }
        let c = try Run.run("/usr/bin/env", ["python3", Self.checker, run.path, metrics.path])
        #expect(c.status == 0, "\(c.stdout)\(c.stderr)")
        #expect(c.stdout.contains("9 scalar tags (258 points) and 2 histogram tags match"), "\(c.stdout)")
        print("TensorBoardTests: \(c.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    @Test func badInputIsOneErrorLine() throws {
        let dir = Paths.tempDir("tensorboard-bad")
        let metrics = dir.appendingPathComponent("m.jsonl"), file = dir.appendingPathComponent("file")
        try PlotTests.jsonl.write(to: metrics, atomically: true, encoding: .utf8)
        try Data().write(to: file)
        let bad = dir.appendingPathComponent("h.jsonl")
        try "{\"step\":1,\"loss\":1}\n{\"step\":2,\"histograms\":{\"w\":{\"min\":0,\"max\":1,\"num\":1,\"sum\":1,\"sum_squares\":1,\"bucket_limit\":[1,0],\"bucket\":[0,1]}}}\n"
            .write(to: bad, atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            ([file.path, metrics.path], "file: is a file, expected a directory for the TensorBoard run"),
            ([dir.appendingPathComponent("run").path, bad.path], "h.jsonl:2: histogram 'w': 'bucket_limit' is not increasing"),
        ]
        for (args, message) in cases {
            let r = try Run.run(Paths.nncc, ["plot", "--tensorboard"] + args)
            #expect(r.status == 1 && r.stderr.hasPrefix("nncc: error: ") && r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("run").path), "nothing written for a bad log")
        let histogramErrors: [(String, String)] = [
            ("[1]", "expected an object of histograms by name"),
            ("{\"w\":{\"min\":0,\"max\":1,\"num\":1,\"sum\":1,\"sum_squares\":1,\"bucket_limit\":[1],\"bucket\":[1,2]}}",
             "'bucket_limit' has 1 edges and 'bucket' 2 counts, expected as many"),
            ("{\"w\":{\"max\":1,\"num\":1,\"sum\":1,\"sum_squares\":1,\"bucket_limit\":[1],\"bucket\":[1]}}", "expected a finite number 'min'"),
            ("{\"w\":{\"min\":0,\"max\":1,\"num\":1,\"sum\":1,\"sum_squares\":1,\"bucket_limit\":[],\"bucket\":[]}}", "expected a non-empty array 'bucket_limit'"),
            ("{\"w\":{\"min\":0,\"max\":1,\"num\":1,\"sum\":1,\"sum_squares\":1,\"bucket_limit\":[1],\"bucket\":[-1]}}", "'bucket' has a negative count"),
            ("{\"w\":{\"min\":0,\"max\":1,\"num\":1,\"sum\":1,\"sum_squares\":1,\"bucket_limit\":[true],\"bucket\":[1]}}",
             "'bucket_limit' holds something other than a finite number"),
        ]
        for (value, reason) in histogramErrors {
            #expect(throws: PlotError.self) { try MetricsLog(jsonl: "{\"step\":3,\"histograms\":\(value)}", path: "x") }
            do { _ = try MetricsLog(jsonl: "{\"step\":3,\"histograms\":\(value)}", path: "x") } catch {
                #expect("\(error)".hasPrefix("x:1: histogram ") && "\(error)".hasSuffix(reason), "\(error)")
            }
        }
    }
}
