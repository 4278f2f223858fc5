import NF4KitCore
public import NF4KitFormats

/// The names a model goes by, from a Hub id, a Hugging Face cache folder or a local path: used to tell whether a
/// PEFT adapter's `base_model_name_or_path` names the base model it is merged into.
///
/// The rule (docs/merge.md, "Which base"):
/// - A Hub id `org/name[@revision]` and a cache folder `.../models--org--name/snapshots/<commit>` (or a file in it)
///   are named `name`. A local path is named by its last component; a weight file (`model.safetensors`,
///   `x.gguf`) by its folder and, unless generic (`model`, `pytorch_model`, `adapter_model`, shards), its stem.
/// - Names are compared without case, with `-`, `_` and `.` alike, and without trailing format words
///   (``formatWords``: `nf4`, `dq`, `bnb`, `4bit`, `f16`, `bf16`, `hf`, ...), so `llama-nf4` is `llama`. A name made
///   of format words only (`fp16`, `nf4-dq`) is the name of the folder above it (`llama-tiny/fp16`).
/// - The base goes by the names of its path as given, of its real path (links and `.` resolved), and of its
///   config's `_name_or_path`.
/// - The adapter names the base when any of these names is one of the names of `base_model_name_or_path`, or when
///   the model it names is on disk (a path, beside the adapter, or a Hub id in the local cache) and its config.json
///   describes the same architecture as the base's (the base is a converted copy of it, say its NF4 version).
public struct BaseModelIdentity: Sendable, Hashable {
    /// The normalized names (see the type's discussion).
    public var names: Set<String>

    /// Trailing words of a model name that say its format or precision, not which model it is.
    public static let formatWords: Set<String> = [
        "nf4", "fp4", "dq", "bnb", "4bit", "8bit", "int4", "int8", "f16", "fp16", "float16", "half", "bf16", "bfloat16",
        "f32", "fp32", "float32", "hf", "gguf", "safetensors",
    ]

    /// `config.json` keys that describe a model's architecture; two configs that agree on every one both hold
    /// are taken to describe the same model (a cast or quantized copy changes none of them).
    public static let architectureKeys = [
        "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings", "rope_theta", "rms_norm_eps",
    ]

    /// The names of `text`: a Hub id, a cache folder or a local path (see the type's discussion).
    public init(naming text: String) {
        var names = Set<String>()
        if let repository = HubCache.repository(containing: text), let name = repository.split(separator: "/").last {
            names.insert(Self.normalized(name))
        } else if let model = HubCache.ModelID(text) {
            names.formUnion(Self.names(components: [model.organization, model.name]))
        } else {
            var components = text.split(separator: "/").map(String.init)
            if let last = components.last, Self.isWeightFile(last) {
                components.removeLast()
                let stem = String(last[..<(last.lastIndex(of: ".") ?? last.endIndex)])
                if !Self.isGenericStem(stem) { names.formUnion(Self.names(components: components + [stem])) }
            }
            names.formUnion(Self.names(components: components))
        }
        names.remove("")
        self.names = names
    }

    /// The names of the base model `source`: its path as given and resolved, and its config's `_name_or_path`.
    public init(base source: ModelSource) {
        var names = BaseModelIdentity(naming: source.path).names
        if let real = FileAccess.realPath(source.path) { names.formUnion(BaseModelIdentity(naming: real).names) }
        if let recorded = source.config?["_name_or_path"]?.stringValue, !recorded.isEmpty {
            names.formUnion(BaseModelIdentity(naming: recorded).names)
        }
        self.names = names
    }

    /// Whether the two share a name.
    public func sharesName(with other: BaseModelIdentity) -> Bool { !names.isDisjoint(with: other.names) }

    /// A warning when the adapter at `adapterPath` says it was made for another model than `base`, else `nil`.
    ///
    /// - Parameters:
    ///   - claimed: The adapter's `base_model_name_or_path` (no warning when it is empty).
    ///   - adapterPath: The adapter folder, named in the warning and searched beside for a relative `claimed`.
    ///   - base: The base model being merged into.
    public static func mismatch(claimed: String, adapterPath: String, base: ModelSource) -> String? {
        guard !claimed.isEmpty else { return nil }
        let baseIdentity = BaseModelIdentity(base: base)
        var claimedIdentity = BaseModelIdentity(naming: claimed)
        if let real = FileAccess.realPath(claimed) {
            claimedIdentity.names.formUnion(BaseModelIdentity(naming: real).names)
        }
        if baseIdentity.sharesName(with: claimedIdentity) { return nil }
        var detail = ""
        if let named = namedConfig(claimed, adapterPath: adapterPath), let baseConfig = base.config {
            guard let difference = architectureDifference(named.config, baseConfig) else { return nil }
            detail = " (\(named.path) has \(difference.key) \(difference.named), the base \(difference.base))"
        }
        let actual = base.config?["_name_or_path"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? base.path
        return "\(adapterPath): the adapter was made for base '\(claimed)', but the base is '\(actual)'\(detail); "
            + "check that this is the right base model"
    }

    /// The config.json of the model `claimed` names, when it is on disk: `claimed` as a path, beside the adapter
    /// (in its folder's ancestors), or as a Hub id in the local cache. Never touches the network.
    static func namedConfig(_ claimed: String, adapterPath: String) -> (path: String, config: JSONObject)? {
        var folders = [claimed]
        if !claimed.hasPrefix("/") {
            var folder = adapterPath
            for _ in 0..<3 {
                guard let slash = folder.lastIndex(of: "/") else { break }
                folder = String(folder[..<slash])
                if !folder.isEmpty { folders.append(folder + "/" + claimed) }
            }
        }
        if let model = HubCache.ModelID(claimed), let snapshot = try? HubCache.current.snapshot(of: model) {
            folders.append(snapshot)
        }
        for folder in folders where FileAccess.exists(folder) {
            // A weight file names the folder it is in.
            let directory =
                FileAccess.isDirectory(folder)
                ? folder : String(folder[..<(folder.lastIndex(of: "/") ?? folder.startIndex)])
            let path = (directory.isEmpty ? "." : directory) + "/config.json"
            guard FileAccess.exists(path), let config = try? ModelSource.readJSONObject(path) else { continue }
            return (path, config)
        }
        return nil
    }

    /// The first architecture key (``architectureKeys``) both configs hold with different values, or `nil` when
    /// they agree on at least one key and differ on none.
    static func architectureDifference(
        _ named: JSONObject, _ base: JSONObject
    ) -> (key: String, named: String, base: String)? {
        var compared = 0
        for key in architectureKeys {
            guard let a = named[key], let b = base[key], !a.isNull, !b.isNull else { continue }
            compared += 1
            let same = if let x = a.doubleValue, let y = b.doubleValue { x == y } else { a == b }
            if !same { return (key, text(a), text(b)) }
        }
        if compared == 0 {
            return ("model_type", named["model_type"].map(text) ?? "none", base["model_type"].map(text) ?? "none")
        }
        return nil
    }

    private static func text(_ value: JSONValue) -> String {
        switch value {
        case .number(let n): n
        case .string(let s): s
        default: "\(value)"
        }
    }

    /// The name of a path given as components: the last one that is more than format words.
    private static func names(components: [String]) -> Set<String> {
        for component in components.reversed() where component != "." && component != ".." {
            let name = normalized(Substring(component))
            if !name.isEmpty { return [name] }
        }
        return []
    }

    /// Lower case, separators unified, trailing ``formatWords`` dropped.
    static func normalized(_ name: Substring) -> String {
        var words = name.lowercased().split(whereSeparator: { $0 == "-" || $0 == "_" || $0 == "." }).map(String.init)
        while let last = words.last, formatWords.contains(last) { words.removeLast() }
        return words.joined(separator: "-")
    }

    private static func isWeightFile(_ name: String) -> Bool {
        [".safetensors", ".bin", ".gguf", ".pt", ".pth"].contains { name.lowercased().hasSuffix($0) }
    }

    private static func isGenericStem(_ stem: String) -> Bool {
        ["model", "pytorch_model", "adapter_model", "consolidated"].contains(stem) || stem.hasPrefix("model-0")
            || stem.hasPrefix("pytorch_model-0")
    }
}
