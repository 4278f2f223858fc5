package import NF4KitCore

/// The container named by `--format`.
public enum OutputFormat: String, Sendable, CaseIterable {
    /// safetensors: one `.safetensors` file, or a Hugging Face folder.
    case safetensors
    /// One GGUF file.
    case gguf
}

/// One output checkpoint: a `.safetensors` file, a Hugging Face folder (sharded by `--max-shard-size`, with the
/// index transformers writes) or a GGUF file, planned from names, dtypes and shapes before any data exists.
///
/// Every pipeline writes through it: tensors go in any order, from any thread (whole or in pieces), side files
/// go into a folder, and ``finish()`` renames the output into place. Until then the output lives under a unique
/// temporary name created exclusively (``OutputFile``, ``OutputDirectory``); an unfinished output is removed.
// @unchecked Sendable: the storage is immutable after init and each writer is thread-safe.
package final class CheckpointOutput: @unchecked Sendable {
    /// The form written.
    package let form: Form
    /// The final path (without a trailing `/`).
    package let path: String
    /// The names of the files written: shards and index for a folder, or the one file's name.
    package let fileNames: [String]
    /// Sum of the tensors' data bytes (headers excluded).
    package let tensorByteCount: Int

    /// The form of a checkpoint output, chosen in one place from its name and `--format`.
    package enum Form: Sendable, Equatable {
        /// One `.safetensors` file.
        case safetensorsFile
        /// A Hugging Face folder: `model.safetensors` or shards + `model.safetensors.index.json`, plus side files.
        case folder
        /// One GGUF file.
        case gguf

        /// The form for the output name `path`.
        ///
        /// A name ending in `.safetensors` is one file, `.gguf` a GGUF file, a trailing `/` or any other name a folder.
        /// `format` may confirm the name or, for a name that says no format, pick GGUF; a name that says one format
        /// never holds the other.
        /// - Throws: ``CheckpointError`` `.invalidArgument` for an empty name, a name and `format` that disagree, or a
        ///   name of a container nf4kit does not write (`.bin`, `.pt`, `.pth`, `.ckpt`).
        package static func choose(for path: String, format: OutputFormat? = nil) throws(CheckpointError) -> Form {
            guard !path.isEmpty else { throw CheckpointError(.invalidArgument, "the output name (-o) is empty") }
            let lower = path.lowercased()
            let named: Form? =
                if lower.hasSuffix("/") { .folder } else if lower.hasSuffix(".safetensors") {
                    .safetensorsFile
                } else if lower.hasSuffix(".gguf") { .gguf } else { nil }
            if named == nil, let suffix = [".bin", ".pt", ".pth", ".ckpt"].first(where: { lower.hasSuffix($0) }) {
                throw CheckpointError(
                    .invalidArgument,
                    "nf4kit does not write PyTorch pickles ('\(suffix)'); name a .safetensors file, a .gguf file or a folder",
                    file: path)
            }
            switch (named, format) {
            case (nil, .gguf?): return .gguf
            case (nil, _): return .folder
            case (.gguf?, .safetensors?), (.safetensorsFile?, .gguf?), (.folder?, .gguf?):
                let says = named == .gguf ? "a GGUF file" : named == .folder ? "a folder" : "a safetensors file"
                throw CheckpointError(
                    .invalidArgument, "the output name says \(says), which cannot hold --format \(format!.rawValue)",
                    file: path)
            case (let form?, _): return form
            }
        }
    }

    private enum Storage {
        case file(SafetensorsWriter)
        case folder(SafetensorsFolderWriter)
        case gguf(GGUFWriter, [String: Int])
    }
    private let storage: Storage

    /// Plans and creates an output of `form` (see ``Form/choose(for:format:)``) for tensors in state-dict
    /// order; a GGUF output keeps the Hugging Face tensor names (``huggingFaceGGUFMetadata(config:)``).
    ///
    /// - Parameters:
    ///   - metadata: Each safetensors file's `__metadata__` (Hugging Face tools expect `[("format", "pt")]`).
    ///   - maxShardBytes: `--max-shard-size`: the folder's shard limit, and the most a single `.safetensors` file
    ///     may hold (`nil`: no limit for a single file).
    ///   - totalParameters: The index's `metadata.total_parameters` (default: the stored element count).
    ///   - prefix: The folder's file name stem (`model`, `adapter_model`).
    ///   - ggufMetadata: The GGUF key/value records (GGUF only).
    ///   - overwrite: `--force`: replace an existing output nf4kit could have written (never an input).
    ///   - inputs: Every file and folder this run reads.
    /// - Throws: ``CheckpointError``: `.invalidArgument` when a single file would exceed `maxShardBytes` or a tensor
    ///   cannot be stored in the form; `.outputExists`, `.io`.
    package convenience init(
        path: String, form: Form, tensors: [(name: String, dtype: DType, shape: Shape)],
        metadata: [(String, String)]?, maxShardBytes: Int?, totalParameters: Int? = nil, prefix: String = "model",
        ggufMetadata: [GGUFMetadataEntry] = [], overwrite: Bool, inputs: [String]
    ) throws(CheckpointError) {
        switch form {
        case .gguf:
            var plans: [GGUFTensorPlan] = []
            for tensor in tensors {
                guard let type = GGMLType(dtype: tensor.dtype) else {
                    throw CheckpointError(
                        .invalidArgument,
                        "tensor '\(tensor.name)' is \(tensor.dtype), which a GGUF file with Hugging Face names cannot "
                            + "hold (a bitsandbytes 4-bit output is written as .safetensors or a folder)",
                        file: path, tensor: tensor.name)
                }
                plans.append(GGUFTensorPlan(name: tensor.name, type: type, shape: tensor.shape))
            }
            try self.init(gguf: path, metadata: ggufMetadata, tensors: plans, overwrite: overwrite, inputs: inputs)
        case .safetensorsFile:
            let layout = try SafetensorsLayout(tensors: tensors, metadata: metadata)
            let bytes = layout.entries.reduce(0) { $0 + $1.byteCount }
            if let maxShardBytes, bytes > maxShardBytes {
                throw CheckpointError(
                    .invalidArgument,
                    "the output would hold \(bytes) bytes of tensors, more than --max-shard-size (\(maxShardBytes) "
                        + "bytes) allows in one .safetensors file; name a folder (-o NAME/) to shard it, or raise "
                        + "--max-shard-size",
                    file: path)
            }
            let writer = try SafetensorsWriter(path: path, layout: layout, overwrite: overwrite, inputs: inputs)
            self.init(form: form, path: path, files: [Self.lastComponent(path)], bytes: bytes, storage: .file(writer))
        case .folder:
            let plan = try SafetensorsFolderWriter.Plan(
                tensors: tensors, metadata: metadata, maxShardBytes: maxShardBytes ?? Int.max, prefix: prefix,
                totalParameters: totalParameters)
            let writer = try SafetensorsFolderWriter(path: path, plan: plan, overwrite: overwrite, inputs: inputs)
            let files = plan.shardPlan.shards.map(\.fileName) + (plan.index != nil ? [plan.indexFileName] : [])
            self.init(form: form, path: writer.path, files: files, bytes: plan.totalByteCount, storage: .folder(writer))
        }
    }

    /// Checks, before any work, that an output of `form` may be created at `path` (the same rules the output
    /// applies when it is created: see ``OutputFile`` and ``OutputDirectory``).
    /// - Throws: ``CheckpointError`` `.outputExists` (exit 74) naming the rule, `.invalidArgument` for an empty name.
    package static func checkDestination(
        _ path: String, form: Form, overwrite: Bool, inputs: [String]
    ) throws(CheckpointError) {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        try OutputGuard(inputs: inputs).check(path, isFolder: form == .folder, overwrite: overwrite)
    }

    /// Creates a GGUF output from planned tensors and metadata: the one entry point for every GGUF layout (the
    /// Hugging Face names of ``init(path:form:tensors:metadata:maxShardBytes:totalParameters:prefix:ggufMetadata:overwrite:inputs:)``,
    /// or a layout that renames tensors and writes its own metadata).
    ///
    /// Tensors are then written by their plan names, with the bytes ggml expects (row-major, little-endian).
    /// - Throws: ``CheckpointError`` from ``GGUFLayout/plan(metadata:tensors:)``, `.outputExists`, `.io`.
    package convenience init(
        gguf path: String, metadata: [GGUFMetadataEntry], tensors: [GGUFTensorPlan], overwrite: Bool, inputs: [String]
    ) throws(CheckpointError) {
        let layout = try GGUFLayout.plan(metadata: metadata, tensors: tensors)
        let writer = try GGUFWriter(path: path, layout: layout, overwrite: overwrite, inputs: inputs)
        var index: [String: Int] = [:]
        for (i, tensor) in tensors.enumerated() { index[tensor.name] = i }
        self.init(
            form: .gguf, path: path, files: [Self.lastComponent(path)], bytes: layout.byteCounts.reduce(0, +),
            storage: .gguf(writer, index))
    }

    private init(form: Form, path: String, files: [String], bytes: Int, storage: Storage) {
        self.form = form
        self.path = path
        fileNames = files
        tensorByteCount = bytes
        self.storage = storage
    }

    /// The metadata of a GGUF file that keeps Hugging Face tensor names (`--layout hf`): `general.architecture`
    /// from `config.json`'s `model_type`, `general.type` = `model`, `nf4kit.layout` = `hf`, and the config itself as
    /// `nf4kit.hf.config_json` so the folder can be rebuilt. llama.cpp does not load this layout.
    package static func huggingFaceGGUFMetadata(config: JSONObject?) -> [GGUFMetadataEntry] {
        let architecture = config?["model_type"]?.stringValue ?? "unknown"
        var entries = [
            GGUFMetadataEntry(key: "general.architecture", value: .string(architecture)),
            GGUFMetadataEntry(key: "general.type", value: .string("model")),
            GGUFMetadataEntry(key: "nf4kit.layout", value: .string("hf")),
        ]
        if let config {
            let text = String(decoding: JSONWriter.compact.bytes(.object(config)), as: UTF8.self)
            entries.append(GGUFMetadataEntry(key: "nf4kit.hf.config_json", value: .string(text)))
        }
        return entries
    }

    /// Whether the output is a folder, which also holds side files (`config.json`, tokenizer files, ...).
    package var holdsSideFiles: Bool { form == .folder }

    /// Writes the bytes of tensor `name` (exactly its planned size, little-endian, row-major).
    ///
    /// May be called from several threads at once, for different tensors, in any order.
    /// - Throws: ``CheckpointError`` `.invalidArgument` for an unplanned name or a wrong byte count, `.io`.
    package func write(_ name: String, bytes: UnsafeRawBufferPointer) throws(CheckpointError) {
        switch storage {
        case .file(let writer): try writer.write(name, bytes: bytes)
        case .folder(let writer): try writer.write(name, bytes: bytes)
        case .gguf(let writer, let index): try writer.write(tensorAt: try position(name, index), bytes)
        }
    }

    /// Writes a tensor from a byte view (into a GGUF file, a view of a mapped file is copied inside the kernel).
    package func write(_ name: String, bytes: TensorBytes) throws(CheckpointError) {
        if case .gguf(let writer, let index) = storage {
            try writer.write(tensorAt: try position(name, index), bytes)
            return
        }
        try bytes.withUnsafeBytes { (raw) throws(CheckpointError) in try write(name, bytes: raw) }
    }

    /// Writes `bytes` at byte `offset` inside tensor `name`; the tensor counts as written when `completes` is true.
    package func write(
        _ name: String, part bytes: UnsafeRawBufferPointer, at offset: Int, completes: Bool
    ) throws(CheckpointError) {
        switch storage {
        case .file(let writer): try writer.write(name, part: bytes, at: offset, completes: completes)
        case .folder(let writer): try writer.write(name, part: bytes, at: offset, completes: completes)
        case .gguf(let writer, let index):
            try writer.write(tensorAt: try position(name, index), part: bytes, at: offset, completes: completes)
        }
    }

    private func position(_ name: String, _ index: [String: Int]) throws(CheckpointError) -> Int {
        guard let position = index[name] else {
            throw CheckpointError(
                .invalidArgument, "tensor '\(name)' is not in the planned output", file: path, tensor: name)
        }
        return position
    }

    /// Adds a small side file to a folder output.
    /// - Precondition: ``holdsSideFiles``.
    package func writeSideFile(_ name: String, bytes: [UInt8]) throws(CheckpointError) {
        guard case .folder(let writer) = storage else { preconditionFailure("side files go into a folder output") }
        try writer.writeSideFile(name, bytes: bytes)
    }

    /// Copies a side file (links followed) byte for byte into a folder output.
    /// - Precondition: ``holdsSideFiles``.
    package func copySideFile(from source: String, as name: String) throws(CheckpointError) {
        guard case .folder(let writer) = storage else { preconditionFailure("side files go into a folder output") }
        try writer.copySideFile(from: source, as: name)
    }

    /// Checks that every tensor was written, writes the index of a sharded folder, and renames the output into
    /// place.
    /// - Throws: ``CheckpointError`` `.invalidArgument` naming a tensor never written, `.outputExists`, `.io`.
    package func finish() throws(CheckpointError) {
        switch storage {
        case .file(let writer): try writer.finish()
        case .folder(let writer): try writer.finish()
        case .gguf(let writer, _): try writer.finish()
        }
    }

    private static func lastComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}
