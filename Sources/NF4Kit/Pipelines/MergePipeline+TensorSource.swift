import NF4KitCore
import NF4KitFormats
import NF4KitMerge

extension MergePipeline {
    /// The merge of `adapters` into `base` as a model source whose tensors are computed when they are first read.
    ///
    /// Nothing is merged here: the inputs are opened, checked and planned as by
    /// ``run(base:adapters:output:options:progress:)``, and each output tensor becomes a ``Tensor`` with the name,
    /// dtype and shape `run` would write. A tensor the merge copies unchanged is the base's own bytes (a view of its
    /// file); every other one is a deferred region whose first read runs that tensor's merge into it, and which
    /// `TensorBytes.releasePages()` frees again. A consumer that streams the tensors and releases each one (the GGUF
    /// export) therefore holds a few merged tensors at a time, and reads the bytes `run` would have written. It must
    /// call `TensorBytes.materialize()` before reading a tensor: a merge's error (a non-finite value, a cancellation)
    /// is thrown there.
    ///
    /// The source is the base's (its path, tokenizer and other side files) with `config.json` changed as `run` writes
    /// it; its checkpoint lists the adapters' files beside the base's, so an output guard keeps both from being
    /// replaced.
    ///
    /// - Returns: The source, and the warnings `run` would print (an adapter made for another base, and the like).
    /// - Throws: The setup errors of `run`; `.invalidArgument` when the output is not plain (`--to nf4|fp4`, or
    ///   `same` on a 4-bit base), whose tensor sizes are known only after quantizing.
    static func tensorSource(
        base: String, adapters: [String], options: MergeOptions
    ) throws -> (source: ModelSource, warnings: [MergeWarning]) {
        let setup = try MergeSetup(base: base, adapters: adapters, options: options)
        let target = setup.target
        guard target.quantization == nil, target.plainDType != nil || setup.baseModel.quantization == nil else {
            throw CheckpointError(
                .invalidArgument,
                "a merge computed tensor by tensor needs a plain output (--to f16|bf16|f32, or a plain base)",
                file: base)
        }
        let pool = MergeScratchPool()
        var largest = 0
        var tensors: [Tensor] = []
        for unit in try setup.outputUnits() {
            guard let output = unit.outputs?.first, unit.outputs?.count == 1 else {
                throw CheckpointError(
                    .internalInconsistency, "merged tensor '\(unit.entry.name)' has no single planned output",
                    tensor: unit.entry.name)
            }
            let bytes: TensorBytes
            let file: String
            let fileOffset: Int64
            if let unchanged = unit.unchangedSource(as: output.dtype) {
                bytes = unchanged.bytes
                file = unchanged.descriptor.file
                fileOffset = unchanged.descriptor.fileOffset
            } else {
                let byteCount = output.dtype.byteCount(elementCount: output.shape.elementCount) ?? 0
                bytes = unit.onDemandBytes(byteCount: byteCount, form: target, options: options, pool: pool)
                largest = max(largest, unit.entry.shape.elementCount)
                file = bytes.region.path
                fileOffset = 0
            }
            tensors.append(
                Tensor(
                    descriptor: TensorDescriptor(
                        name: output.name, dtype: output.dtype, shape: output.shape, file: file,
                        fileOffset: fileOffset, byteCount: bytes.count),
                    bytes: bytes))
        }
        pool.reserve(floatCount: largest)
        var source = setup.baseSource
        let checkpoint = source.checkpoint
        source.checkpoint = Checkpoint(
            format: checkpoint.format, files: checkpoint.files + setup.adapterSources.flatMap(\.inputPaths),
            tensors: tensors, metadata: checkpoint.metadata)
        if let config = source.config {
            source.config =
                adjustedConfig(config, form: target, base: setup.baseModel, plan: setup.plan, untie: setup.untie)
                ?? config
        }
        return (source, setup.warnings)
    }
}

extension MergeSetup {
    /// The output units, in base order, planned from shapes.
    func outputUnits() throws(CheckpointError) -> [OutputUnit] {
        var units: [OutputUnit] = []
        for entry in baseModel.entries {
            units.append(try OutputUnit(entry: entry, action: plan.actions[entry.name], form: target))
        }
        return units
    }
}

extension OutputUnit {
    /// The base (or adapter) tensor this unit writes byte for byte as a `dtype` output, or `nil` when the unit
    /// computes its bytes (a merge, a dtype conversion, a dequantization).
    func unchangedSource(as dtype: DType) -> Tensor? {
        guard case .plain(let tensor) = entry.storage, action?.needsArithmetic != true else { return nil }
        let source = action?.replacement ?? tensor
        return source.dtype == dtype ? source : nil
    }
}
