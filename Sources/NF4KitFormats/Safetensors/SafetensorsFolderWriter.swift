package import NF4KitCore

/// Writes a checkpoint as a Hugging Face model folder: `model.safetensors`, or shards
/// `model-0000i-of-0000N.safetensors` plus `model.safetensors.index.json`.
///
/// Streaming: every shard's layout is planned from names, dtypes and shapes alone (``Plan``), each shard's header
/// is written when the writer is created, and tensor bytes are then accepted in any order and from any thread
/// (each goes with `pwrite` to its planned offset). Peak memory is the caller's tensor buffers. The folder is
/// built in a fresh temporary folder (``OutputDirectory``) and renamed to `PATH` by ``finish()``; an unfinished
/// writer removes it.
///
/// Sharding follows huggingface_hub (``ShardPlan``: greedy in state-dict order, an oversized tensor alone); the
/// index is written as transformers 5 writes it (sorted keys, indent 2, final newline, `metadata.total_size` =
/// sum of tensor bytes, `metadata.total_parameters`).
// @unchecked Sendable: all stored properties are immutable after init; the shard writers are thread-safe.
package final class SafetensorsFolderWriter: @unchecked Sendable {
    /// The planned files of a folder, computed from tensor shapes before any data is written.
    package struct Plan: Sendable {
        /// Which tensors go to which file, in state-dict order.
        package let shardPlan: ShardPlan
        /// The layout of each file of ``shardPlan`` (same order).
        package let layouts: [SafetensorsLayout]
        /// The index to write, or `nil` when everything fits in one file.
        package let index: SafetensorsIndex?
        /// Sum of all tensors' data bytes (headers excluded): the index's `metadata.total_size`.
        package let totalByteCount: Int
        /// The index's `metadata.total_parameters`.
        package let totalParameters: Int
        /// The file name stem (`model`).
        package let prefix: String
        /// The index file's name when sharded (`model.safetensors.index.json`).
        package var indexFileName: String { "\(prefix).safetensors.index.json" }
        /// Shard number (into ``layouts``) of each tensor.
        let shardOfTensor: [String: Int]

        /// Plans the files for `tensors`, given in state-dict order.
        ///
        /// - Parameters:
        ///   - tensors: Names, dtypes and shapes in the order the state dict lists them (sharding is greedy in it).
        ///   - metadata: The `__metadata__` of every shard (e.g. `[("format", "pt")]`); `nil` omits it.
        ///   - maxShardBytes: The `--max-shard-size` limit on tensor bytes per file (huggingface_hub's rule).
        ///   - prefix: File name stem, `model` for `model.safetensors` / `model-00001-of-00002.safetensors`.
        ///   - totalParameters: `metadata.total_parameters` for the index; by default the stored element count.
        /// - Throws: ``CheckpointError`` `.invalidArgument` for a duplicate or reserved name, a size that
        ///   overflows or is not whole bytes, or a limit that is not positive.
        /// - Complexity: O(*n* log *n*) in the number of tensors.
        package init(
            tensors: [(name: String, dtype: DType, shape: Shape)], metadata: [(String, String)]?, maxShardBytes: Int,
            prefix: String = "model", totalParameters: Int? = nil
        ) throws(CheckpointError) {
            guard maxShardBytes > 0 else {
                throw CheckpointError(.invalidArgument, "the maximum shard size must be positive, not \(maxShardBytes)")
            }
            var sizes: [(name: String, byteCount: Int)] = []
            var byName: [String: (dtype: DType, shape: Shape)] = [:]
            var total = 0
            var elements = 0
            for tensor in tensors {
                guard byName.updateValue((tensor.dtype, tensor.shape), forKey: tensor.name) == nil else {
                    throw CheckpointError(
                        .invalidArgument, "tensor name '\(tensor.name)' appears twice", tensor: tensor.name)
                }
                guard let count = tensor.shape.checkedElementCount,
                    let bytes = tensor.dtype.byteCount(elementCount: count)
                else {
                    throw CheckpointError(
                        .invalidArgument,
                        "tensor '\(tensor.name)': shape \(tensor.shape) of \(tensor.dtype) is not a whole number of bytes or overflows",
                        tensor: tensor.name)
                }
                let (newTotal, o1) = total.addingReportingOverflow(bytes)
                let (newElements, o2) = elements.addingReportingOverflow(count)
                guard !o1, !o2 else {
                    throw CheckpointError(
                        .invalidArgument, "the checkpoint's total size overflows", tensor: tensor.name)
                }
                total = newTotal
                elements = newElements
                sizes.append((tensor.name, bytes))
            }
            let plan = ShardPlan(tensors: sizes, maxShardBytes: maxShardBytes, prefix: prefix)
            var layouts: [SafetensorsLayout] = []
            var shardOf: [String: Int] = [:]
            var weightMap: [(name: String, file: String)] = []
            for (number, shard) in plan.shards.enumerated() {
                let members = shard.tensorNames.map { name in
                    let info = byName[name]!
                    return (name: name, dtype: info.dtype, shape: info.shape)
                }
                layouts.append(try SafetensorsLayout(tensors: members, metadata: metadata))
                for name in shard.tensorNames {
                    shardOf[name] = number
                    weightMap.append((name, shard.fileName))
                }
            }
            shardPlan = plan
            self.prefix = prefix
            self.layouts = layouts
            shardOfTensor = shardOf
            totalByteCount = total
            self.totalParameters = totalParameters ?? elements
            index =
                plan.isSharded
                ? SafetensorsIndex(weightMap: weightMap, totalSize: total, totalParameters: self.totalParameters) : nil
        }
    }

    /// The plan being written.
    package let plan: Plan
    /// The final folder path.
    package var path: String { directory.path }
    private let directory: OutputDirectory
    private let writers: [SafetensorsWriter]

    /// Creates `path.partial/` and every shard file in it, with its header already written.
    ///
    /// - Parameters:
    ///   - path: The folder to create.
    ///   - overwrite: Replace an existing folder at `path` (the CLI's `--force`); an input is never replaced.
    ///   - inputs: Paths read by this run, which the output may neither be nor contain.
    /// - Throws: ``CheckpointError`` `.outputExists` or `.io`.
    package init(path: String, plan: Plan, overwrite: Bool, inputs: [String] = []) throws(CheckpointError) {
        self.plan = plan
        directory = try OutputDirectory(path: path, overwrite: overwrite, inputs: inputs)
        var writers: [SafetensorsWriter] = []
        for (shard, layout) in zip(plan.shardPlan.shards, plan.layouts) {
            writers.append(try SafetensorsWriter(file: try directory.createFile(shard.fileName), layout: layout))
        }
        self.writers = writers
    }

    /// Writes the bytes of tensor `name` (exactly its planned size, little-endian, row-major) into its shard.
    ///
    /// May be called from several threads at once, for different tensors, in any order.
    /// - Throws: ``CheckpointError`` `.invalidArgument` for an unplanned name or a wrong byte count, `.io`.
    package func write(_ name: String, bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        guard let shard = plan.shardOfTensor[name] else {
            throw CheckpointError(
                .invalidArgument, "tensor '\(name)' is not in the planned folder", file: directory.path, tensor: name)
        }
        try writers[shard].write(name, bytes: bytes)
    }

    /// Writes `bytes` at byte `offset` inside tensor `name`, for tensors produced in pieces (see
    /// ``SafetensorsWriter/write(_:part:at:completes:)``).
    package func write(
        _ name: String, part bytes: UnsafeRawBufferPointer, at offset: Int, completes: Bool
    ) throws(CheckpointError) {
        guard let shard = plan.shardOfTensor[name] else {
            throw CheckpointError(
                .invalidArgument, "tensor '\(name)' is not in the planned folder", file: directory.path, tensor: name)
        }
        try writers[shard].write(name, part: bytes, at: offset, completes: completes)
    }

    /// Writes a tensor from a byte view (see ``write(_:bytes:)-(_,UnsafeRawBufferPointer)``).
    package func write(_ name: String, bytes: TensorBytes) throws(CheckpointError) {
        try bytes.withUnsafeBytes { (raw) throws(CheckpointError) in try write(name, bytes: raw) }
    }

    /// Adds a small side file (`config.json`, tokenizer files, ...) to the folder.
    ///
    /// - Throws: ``CheckpointError`` `.invalidArgument` if `name` is not a plain file name or is one of the
    ///   weight files; `.io`.
    package func writeSideFile(_ name: String, bytes: [UInt8]) throws(CheckpointError) {
        try checkSideFileName(name)
        try directory.writeFile(name, bytes)
    }

    /// Copies a side file byte for byte into the folder under `name`.
    package func copySideFile(from source: String, as name: String) throws(CheckpointError) {
        try checkSideFileName(name)
        try directory.copyFile(from: source, as: name)
    }

    private func checkSideFileName(_ name: String) throws(CheckpointError) {
        let weightNames = plan.shardPlan.shards.map(\.fileName) + [plan.indexFileName]
        guard !name.isEmpty, !name.contains("/"), name != ".", name != "..", !weightNames.contains(name) else {
            throw CheckpointError(
                .invalidArgument, "'\(name)' cannot be a side file of the output folder", file: directory.path)
        }
    }

    /// Checks that every tensor was written, finishes each shard (fsync, rename), writes the index when sharded,
    /// and renames the folder into place.
    ///
    /// - Throws: ``CheckpointError`` `.invalidArgument` naming the first tensor never written; `.io`,
    ///   `.outputExists`. The partial folder is removed when the writer goes away unfinished.
    package func finish() throws(CheckpointError) {
        for writer in writers { try writer.finish() }
        if let index = plan.index {
            try directory.writeFile(plan.indexFileName, index.jsonBytes())
        }
        try directory.finish()
    }

    /// Writes `tensors` (in state-dict order) unchanged as a folder at `path`.
    ///
    /// - Parameters:
    ///   - metadata: Each shard's `__metadata__`; Hugging Face tools expect `[("format", "pt")]`.
    ///   - maxShardBytes: The `--max-shard-size` limit (e.g. `ShardPlan.parseSize("5GB")`).
    /// - Throws: ``CheckpointError`` as ``Plan/init(tensors:metadata:maxShardBytes:prefix:totalParameters:)``,
    ///   ``init(path:plan:overwrite:inputs:)`` and ``finish()``.
    package static func write(
        _ tensors: [Tensor], metadata: [(String, String)]?, to path: String, maxShardBytes: Int, overwrite: Bool,
        inputs: [String] = []
    ) throws(CheckpointError) {
        let plan = try Plan(
            tensors: tensors.map { ($0.name, $0.dtype, $0.shape) }, metadata: metadata, maxShardBytes: maxShardBytes)
        let writer = try SafetensorsFolderWriter(path: path, plan: plan, overwrite: overwrite, inputs: inputs)
        for tensor in tensors { try writer.write(tensor.name, bytes: tensor.bytes) }
        try writer.finish()
    }
}
