public import NF4KitCore

/// A checkpoint opened from a file or a Hugging Face folder, with the folder's JSON side files and the container's
/// own header.
///
/// A folder is read as one checkpoint: `model.safetensors.index.json` + shards, or `model.safetensors`, or a PEFT
/// adapter (`adapter_config.json` + `adapter_model.safetensors`), or the PyTorch equivalents (`pytorch_model.bin`,
/// its index, `adapter_model.bin`), or a single `.safetensors`/`.gguf` file. Open one with `ModelSource.open(_:)`
/// (module NF4Kit), the one entry point for every container.
public struct ModelSource: Sendable {
    /// The path given by the user, or the cache snapshot folder a Hub id resolved to.
    public var path: String
    /// Whether `path` is a folder.
    public var isFolder: Bool
    /// The kind of the weight file(s).
    public var kind: FormatDetection.Kind
    public var checkpoint: Checkpoint
    /// `config.json` of the folder, if any.
    public var config: JSONObject?
    /// `adapter_config.json` of the folder, if any (the folder is then a PEFT adapter).
    public var adapterConfig: JSONObject?
    /// Names of the files in the folder that hold weights (shards, index), to leave out when copying the rest.
    public var weightFileNames: [String]
    /// Names of the other regular files of the folder (tokenizer, generation config, ...), in name order.
    public var sideFileNames: [String]

    /// The parsed header and metadata of the GGUF file, when the weights are one (read once: inspect reports it).
    public var gguf: GGUFFile?

    /// Whether the source is a PEFT adapter.
    public var isAdapter: Bool { adapterConfig != nil }

    /// Turns a GGUF tensor of a ggml block type (Q8_0, Q4_0, ...) into a plain tensor.
    ///
    /// The ggml codecs live in NF4KitQuant, which this module may not import; `ModelSource.open(_:)` of module NF4Kit
    /// passes them. Every container reader itself lives here.
    /// Arguments: the tensor's record, its stored bytes, the GGUF file's path.
    package typealias GGMLBlockDecoder = (GGUFTensorInfo, TensorBytes, String) throws(CheckpointError) -> Tensor

    /// Opens `path`: a weight file (format by magic) or a model/adapter folder, in any container.
    ///
    /// A `path` that does not exist and reads as a Hub id (`org/name[@revision]`) is the snapshot folder of that
    /// model in the local Hugging Face cache (``HubCache``); ``path`` is then that folder.
    ///
    /// - Parameter ggmlBlocks: decodes GGUF tensors of ggml block types; without it such a tensor is an
    ///   `.unsupportedDType` error.
    /// - Throws: ``CheckpointError`` from the readers, `.notFound` if nothing readable is there.
    package static func open(_ path: String, ggmlBlocks: GGMLBlockDecoder?) throws -> ModelSource {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        if let snapshot = try HubCache.resolve(path) { path = snapshot }  // `org/name[@revision]`, when no such path
        guard FileAccess.exists(path) else { throw CheckpointError(.notFound, "no such file or folder", file: path) }
        if !FileAccess.isDirectory(path) {
            let kind = try FormatDetection.detect(path: path)
            let (checkpoint, gguf) = try read(kind: kind, path: path, ggmlBlocks: ggmlBlocks)
            return ModelSource(
                path: path, isFolder: false, kind: kind, checkpoint: checkpoint, config: nil, adapterConfig: nil,
                weightFileNames: [], sideFileNames: [], gguf: gguf)
        }
        let names = try FileAccess.list(path)
        let folder = path + "/"
        func has(_ name: String) -> Bool { names.contains(name) }
        var weightFiles: [String] = []
        let kind: FormatDetection.Kind
        let checkpoint: Checkpoint
        var gguf: GGUFFile?
        if has("model.safetensors.index.json") {
            let index = try SafetensorsIndex.read(path: folder + "model.safetensors.index.json")
            weightFiles = ["model.safetensors.index.json"] + Set(index.weightMap.map(\.file)).sorted()
            checkpoint = try SafetensorsIndex.readCheckpoint(indexPath: folder + "model.safetensors.index.json")
            kind = .safetensors
        } else if let single = ["model.safetensors", "adapter_model.safetensors"].first(where: has) {
            weightFiles = [single]
            checkpoint = try SafetensorsReader.read(path: folder + single)
            kind = .safetensors
        } else if has("pytorch_model.bin.index.json") {
            let index = try SafetensorsIndex.read(
                path: folder + "pytorch_model.bin.index.json", expectedExtension: ".bin")
            weightFiles = ["pytorch_model.bin.index.json"] + Set(index.weightMap.map(\.file)).sorted()
            checkpoint = try TorchCheckpointReader.readSharded(indexPath: folder + "pytorch_model.bin.index.json")
                .deduplicated()
            kind = .torchZip
        } else if let single = ["pytorch_model.bin", "adapter_model.bin"].first(where: has) {
            weightFiles = [single]
            kind = try FormatDetection.detect(path: folder + single)
            (checkpoint, gguf) = try read(kind: kind, path: folder + single, ggmlBlocks: ggmlBlocks)
        } else {
            let candidates = names.filter { $0.hasSuffix(".safetensors") || $0.hasSuffix(".gguf") }
            guard candidates.count == 1 else {
                throw CheckpointError(
                    .notFound,
                    candidates.isEmpty
                        ? "the folder has no model.safetensors, index, adapter or .bin weights"
                        : "the folder has several weight files (\(candidates.joined(separator: ", "))) and no index",
                    file: path)
            }
            weightFiles = candidates
            kind = try FormatDetection.detect(path: folder + candidates[0])
            (checkpoint, gguf) = try read(kind: kind, path: folder + candidates[0], ggmlBlocks: ggmlBlocks)
        }
        let config = has("config.json") ? try readJSONObject(folder + "config.json") : nil
        let adapterConfig = has("adapter_config.json") ? try readJSONObject(folder + "adapter_config.json") : nil
        let side = names.filter { name in
            !weightFiles.contains(name) && !name.hasSuffix(".partial") && !FileAccess.isDirectory(folder + name)
        }
        return ModelSource(
            path: path, isFolder: true, kind: kind, checkpoint: checkpoint, config: config,
            adapterConfig: adapterConfig,
            weightFileNames: weightFiles, sideFileNames: side, gguf: gguf)
    }

    /// Reads a small JSON file that must hold an object.
    public static func readJSONObject(_ path: String) throws(CheckpointError) -> JSONObject {
        guard
            case .object(let object) = try StrictJSON.parse(
                try FileAccess.readSmallFile(path), file: path, what: "JSON file")
        else {
            throw CheckpointError(.malformedHeader, "expected a JSON object", file: path, byteOffset: 0)
        }
        return object
    }

    /// The ``Checkpoint`` of a parsed GGUF file: plain tensors as views, NF4 companion tensors as the bitsandbytes
    /// tensors they hold (``GGUFBnbCompanion``), ggml block types through `ggmlBlocks`.
    package static func checkpoint(
        of file: GGUFFile, ggmlBlocks: GGMLBlockDecoder?
    ) throws(CheckpointError) -> Checkpoint {
        var convert: ((GGUFTensorInfo, TensorBytes) throws(CheckpointError) -> Tensor)?
        if let ggmlBlocks {
            convert = { (info, bytes) throws(CheckpointError) -> Tensor in try ggmlBlocks(info, bytes, file.path) }
        }
        let tensors = try GGUFBnbCompanion.decode(file, convertingBlockTensor: convert)
        return Checkpoint(format: .gguf, files: [file.path], tensors: tensors, metadata: file.textMetadata)
    }

    /// Reads one weight file of a known container; for GGUF also returns its parsed header.
    ///
    /// PyTorch checkpoints come back as Hugging Face's safetensors conversion sees them (tied weights de-duplicated,
    /// the dropped names in metadata); GGUF files with NF4 companion tensors as the bitsandbytes tensors they hold.
    private static func read(
        kind: FormatDetection.Kind, path: String, ggmlBlocks: GGMLBlockDecoder?
    ) throws(CheckpointError) -> (Checkpoint, GGUFFile?) {
        switch kind {
        case .safetensors: return (try SafetensorsReader.read(path: path), nil)
        case .gguf:
            let file = try GGUFFile.read(path: path)
            return (try checkpoint(of: file, ggmlBlocks: ggmlBlocks), file)
        case .torchZip, .torchLegacy:
            return (try TorchCheckpointReader.readDetailed(path: path).deduplicated(), nil)
        }
    }
}
