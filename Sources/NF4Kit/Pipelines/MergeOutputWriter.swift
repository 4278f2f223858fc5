import NF4KitCore
import NF4KitFormats
import NF4KitMerge

/// Writes a planned merge to its output, unit by unit, and finishes it.
///
/// Units whose output sizes are only known after computing (freshly quantized weights) go to a scratch file
/// first; then the final layout is planned, every other unit written at its planned offset, the scratch tensors
/// copied in, and the base's side files (config.json adjusted for the output) added.
struct MergeOutputWriter {
    let setup: MergeSetup
    let output: String
    let form: CheckpointOutput.Form
    let options: MergeOptions
    /// The input files, which the output (and the scratch file) may never replace.
    let inputs: [String]

    /// How many units were merged, replaced or copied.
    struct Counts { var merged = 0, replaced = 0, copied = 0 }

    /// Writes `units` (in base order) and finishes the output.
    ///
    /// - Returns: The path written and the counts.
    func write(
        _ units: [OutputUnit], progress: (@Sendable (ProgressEvent) -> Void)?
    ) throws -> (path: String, counts: Counts) {
        let (baseSource, baseModel) = (setup.baseSource, setup.baseModel)
        let (target, plan, untie) = (setup.target, setup.plan, setup.untie)
        let metadata =
            baseSource.checkpoint.metadata.isEmpty
            ? [("format", "pt")] : baseSource.checkpoint.metadata.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        var counts = Counts()
        let tracker = ProgressTracker(
            tensorsTotal: units.count, bytesTotal: units.reduce(0) { $0 + $1.inputByteCount }, report: progress)
        func count(_ result: OutputUnit.Result, _ unit: OutputUnit) {
            tracker.finished(unit.entry.name, bytes: unit.inputByteCount)
            unit.releaseInputPages()
            switch result {
            case .merged: counts.merged += 1
            case .replaced: counts.replaced += 1
            case .copied: counts.copied += 1
            }
        }

        // Pass 1: units whose output sizes are only known after computing (freshly quantized weights) go to a
        // scratch file. Pass 2: plan the final layout, write every other unit, copy the scratch tensors in.
        // A sharded base keeps shards of about its own size (the tensor bytes of its largest shard).
        var shardBytes: [String: Int] = [:]
        for tensor in baseSource.checkpoint.tensors {
            shardBytes[tensor.descriptor.file, default: 0] += tensor.bytes.count
        }
        let sharded = baseSource.weightFileNames.contains("model.safetensors.index.json")
        let shardLimit = sharded ? max(1, shardBytes.values.max() ?? 1) : nil
        var destination: CheckpointOutput?
        do {
            let spillFile = try SpillSink(path: OutputPlanning.trimmed(output) + ".merge-scratch", inputs: inputs)
            let spill = TensorSink.spill(spillFile)
            let scratch = MergeScratch()
            for unit in units where unit.outputs == nil {
                try options.cancellation.check()
                count(try unit.produce(form: target, options: options, sink: spill, scratch: scratch), unit)
            }
            var planned: [(name: String, dtype: DType, shape: Shape)] = []
            var spilled = spillFile.records.makeIterator()
            var nextSpilled = spilled.next()
            for unit in units {
                if let outputs = unit.outputs {
                    planned += outputs.map { ($0.name, $0.dtype, $0.shape) }
                } else {
                    while let record = nextSpilled,
                        record.name == unit.entry.name || record.name.hasPrefix(unit.entry.name + ".")
                    {
                        planned.append((record.name, record.dtype, record.shape))
                        nextSpilled = spilled.next()
                    }
                }
            }
            let adjusted = baseSource.config.flatMap {
                MergePipeline.adjustedConfig($0, form: target, base: baseModel, plan: plan, untie: untie)
            }
            let opened = try CheckpointOutput(
                path: output, form: form, tensors: planned, metadata: metadata, maxShardBytes: shardLimit,
                totalParameters: OutputPlanning.transformersParameterCount(planned),
                ggufMetadata: CheckpointOutput.huggingFaceGGUFMetadata(config: adjusted ?? baseSource.config),
                overwrite: options.overwrite, inputs: inputs)
            destination = opened
            let sink = TensorSink.planned(WriterSink(output: opened))
            for unit in units where unit.outputs != nil {
                try options.cancellation.check()
                count(try unit.produce(form: target, options: options, sink: sink, scratch: scratch), unit)
            }
            try scratch.finishWrites()
            try spillFile.copyAll(into: sink)
        }
        let finished = destination!
        if finished.holdsSideFiles {
            let folder = baseSource.path + "/"
            for name in baseSource.sideFileNames where name != "config.json" {
                try finished.copySideFile(from: folder + name, as: name)
            }
            if let config = baseSource.config {
                if let adjusted = MergePipeline.adjustedConfig(
                    config, form: target, base: baseModel, plan: plan, untie: untie)
                {
                    try finished.writeSideFile(
                        "config.json", bytes: JSONWriter.pythonPretty.bytes(.object(adjusted)) + [0x0A])
                } else {
                    try finished.copySideFile(from: folder + "config.json", as: "config.json")
                }
            }
        }
        try finished.finish()
        return (finished.path, counts)
    }
}
