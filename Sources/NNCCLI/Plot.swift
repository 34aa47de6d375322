import ArgumentParser
import Foundation
import NNCompiler
import NNTensorBoard

/// `nncc plot metrics.jsonl -o curves.svg`: the training curves of a trainer's `--log` file as one SVG;
/// `nncc plot --tensorboard runs/NAME metrics.jsonl`: the log as a TensorBoard run.
struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Plot a trainer's JSON Lines metrics (train --log) as a self-contained SVG.",
        discussion: """
        Panels, for what the log holds: the batch loss per logged step (with a moving average when there are many \
        steps), train/val/test loss per epoch, val/test accuracy per epoch (both with the best epoch marked: early \
        stopping's, else the lowest val_loss, else the lowest train_loss), and the learning rate per step (on a log \
        scale when it spans more than a factor of 20). A step or epoch logged twice (a resumed run appends to its \
        log) keeps its last value.
        """)

    @Argument(help: "The metrics file written by 'TRAINER train --log M.jsonl'.")
    var metrics: String

    @Option(name: .shortAndLong, help: "The SVG to write (default: the metrics file with the extension .svg).")
    var output: String?

    @Option(help: "The title above the panels (default: the metrics file's name).")
    var title: String?

    @Option(help: ArgumentHelp("Write the log as a TensorBoard run into this directory (tensorboard --logdir its parent).",
                               valueName: "dir"))
    var tensorboard: String?

    func run() throws {
        let log = try MetricsLog(contentsOf: metrics)
        let url = URL(fileURLWithPath: metrics)
        if let tensorboard {
            let modified = (try? FileManager.default.attributesOfItem(atPath: metrics)[.modificationDate] as? Date) ?? nil
            let wallTime = (modified ?? Date()).timeIntervalSince1970
            let run = TensorBoardRun(log, wallTime: wallTime)
            let path = try run.write(to: tensorboard, wallTime: wallTime)
            print("wrote \(path) (\(run.events.count - 1) events)")
            if output == nil { return }
        }
        let out = output ?? url.deletingPathExtension().appendingPathExtension("svg").path
        let svg = log.svg(title: title ?? url.lastPathComponent)
        do {
            try Data(svg.utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
        } catch {
            throw PlotError.unreadable(path: out, reason: "cannot write the SVG (\(error.localizedDescription))")
        }
        print("wrote \(out)")
    }
}
