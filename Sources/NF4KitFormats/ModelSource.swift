public import NF4KitCore

/// A checkpoint opened from a file or a Hugging Face folder, with the folder's JSON side files.
///
/// A folder is read as one checkpoint: `model.safetensors.index.json` + shards, or `model.safetensors`, or a PEFT
/// adapter (`adapter_config.json` + `adapter_model.safetensors`), or the PyTorch equivalents when a reader for
/// them is registered (see ``ModelSource/open(_:readers:)``).
public struct ModelSource: Sendable {
    /// The path given by the user.
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

    /// Whether the source is a PEFT adapter.
    public var isAdapter: Bool { adapterConfig != nil }

    /// Readers for containers that live outside the safetensors code (GGUF, PyTorch), registered by the
    /// library's top module so that this layer does not depend on them.
    public struct Readers: Sendable {
        public var gguf: (@Sendable (String) throws -> Checkpoint)?
        public var torch: (@Sendable (String) throws -> Checkpoint)?
        public var torchIndex: (@Sendable (String) throws -> Checkpoint)?
        public init(
            gguf: (@Sendable (String) throws -> Checkpoint)? = nil, torch: (@Sendable (String) throws -> Checkpoint)? = nil,
            torchIndex: (@Sendable (String) throws -> Checkpoint)? = nil
        ) {
            self.gguf = gguf
            self.torch = torch
            self.torchIndex = torchIndex
        }
    }

    /// Opens `path`: a weight file (format by magic) or a model/adapter folder.
    /// - Throws: ``CheckpointError`` from the readers, `.notFound` if nothing readable is there.
    public static func open(_ path: String, readers: Readers = Readers()) throws -> ModelSource {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        guard FileAccess.exists(path) else { throw CheckpointError(.notFound, "no such file or folder", file: path) }
        if !FileAccess.isDirectory(path) {
            let kind = try FormatDetection.detect(path: path)
            let checkpoint = try read(kind: kind, path: path, readers: readers)
            return ModelSource(path: path, isFolder: false, kind: kind, checkpoint: checkpoint, config: nil, adapterConfig: nil, weightFileNames: [], sideFileNames: [])
        }
        let names = try FileAccess.list(path)
        let folder = path + "/"
        func has(_ name: String) -> Bool { names.contains(name) }
        var weightFiles: [String] = []
        let kind: FormatDetection.Kind
        let checkpoint: Checkpoint
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
            guard let reader = readers.torchIndex else { throw unsupported(folder + "pytorch_model.bin.index.json") }
            let index = try SafetensorsIndex.read(path: folder + "pytorch_model.bin.index.json", expectedExtension: ".bin")
            weightFiles = ["pytorch_model.bin.index.json"] + Set(index.weightMap.map(\.file)).sorted()
            checkpoint = try reader(folder + "pytorch_model.bin.index.json")
            kind = .torchZip
        } else if let single = ["pytorch_model.bin", "adapter_model.bin"].first(where: has) {
            weightFiles = [single]
            kind = try FormatDetection.detect(path: folder + single)
            checkpoint = try read(kind: kind, path: folder + single, readers: readers)
        } else {
            let candidates = names.filter { $0.hasSuffix(".safetensors") || $0.hasSuffix(".gguf") }
            guard candidates.count == 1 else {
                throw CheckpointError(
                    .notFound,
                    candidates.isEmpty ? "the folder has no model.safetensors, index, adapter or .bin weights" : "the folder has several weight files (\(candidates.joined(separator: ", "))) and no index",
                    file: path)
            }
            weightFiles = candidates
            kind = try FormatDetection.detect(path: folder + candidates[0])
            checkpoint = try read(kind: kind, path: folder + candidates[0], readers: readers)
        }
        let config = has("config.json") ? try readJSONObject(folder + "config.json") : nil
        let adapterConfig = has("adapter_config.json") ? try readJSONObject(folder + "adapter_config.json") : nil
        let side = names.filter { name in
            !weightFiles.contains(name) && !name.hasSuffix(".partial") && !FileAccess.isDirectory(folder + name)
        }
        return ModelSource(path: path, isFolder: true, kind: kind, checkpoint: checkpoint, config: config, adapterConfig: adapterConfig, weightFileNames: weightFiles, sideFileNames: side)
    }

    /// Reads a small JSON file that must hold an object.
    public static func readJSONObject(_ path: String) throws(CheckpointError) -> JSONObject {
        guard case .object(let object) = try StrictJSON.parse(try FileAccess.readSmallFile(path), file: path, what: "JSON file") else {
            throw CheckpointError(.malformedHeader, "expected a JSON object", file: path, byteOffset: 0)
        }
        return object
    }

    private static func read(kind: FormatDetection.Kind, path: String, readers: Readers) throws -> Checkpoint {
        switch kind {
        case .safetensors: return try SafetensorsReader.read(path: path)
        case .gguf:
            guard let reader = readers.gguf else { throw unsupported(path) }
            return try reader(path)
        case .torchZip, .torchLegacy:
            guard let reader = readers.torch else { throw unsupported(path) }
            return try reader(path)
        }
    }

    private static func unsupported(_ path: String) -> CheckpointError {
        CheckpointError(.unsupported, "no reader for this container is available in this build", file: path)
    }
}
