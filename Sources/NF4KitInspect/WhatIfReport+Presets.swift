public import NF4KitCore

extension WhatIfReport {
    /// A published model's shapes, as its `config.json` on the Hugging Face Hub gives them (docs/inspect.md §10
    /// lists each value with its source).
    public struct Preset: Sendable, Hashable {
        /// The family-qualified name: `llama3.1-70b`, `mistral-7b`, `qwen2.5-7b`, ...
        public var name: String
        /// The published model: `Llama-3.1-70B`.
        public var model: String
        /// The shapes.
        public var architecture: LlamaArchitecture
    }

    /// One item of a `--what-if` list: a known size or model name, or the path of a `config.json`.
    public enum Request: Sendable, Hashable {
        /// A preset, under the label the user typed.
        case preset(label: String, Preset)
        /// A `config.json` to read (or a folder holding one).
        case config(path: String)
    }

    private static func llama(
        _ h: Int, _ i: Int, _ l: Int, _ a: Int, _ kv: Int, _ v: Int, tied: Bool = false, bias: Bool = false
    )
        -> LlamaArchitecture
    {
        LlamaArchitecture(
            hidden: h, intermediate: i, layers: l, heads: a, kvHeads: kv, vocabulary: v, tiedEmbeddings: tied,
            attentionBias: bias)
    }

    /// Every preset: hidden, intermediate, layers, heads, KV heads, vocabulary (+ tied embeddings, q/k/v biases),
    /// copied from each model's published `config.json`.
    public static let allPresets: [Preset] = [
        Preset(name: "llama-7b", model: "LLaMA-7B", architecture: llama(4096, 11008, 32, 32, 32, 32000)),
        Preset(name: "llama-13b", model: "LLaMA-13B", architecture: llama(5120, 13824, 40, 40, 40, 32000)),
        Preset(name: "llama-30b", model: "LLaMA-30B (33B)", architecture: llama(6656, 17920, 60, 52, 52, 32000)),
        Preset(name: "llama-65b", model: "LLaMA-65B", architecture: llama(8192, 22016, 80, 64, 64, 32000)),
        Preset(name: "llama2-7b", model: "Llama-2-7B", architecture: llama(4096, 11008, 32, 32, 32, 32000)),
        Preset(name: "llama2-13b", model: "Llama-2-13B", architecture: llama(5120, 13824, 40, 40, 40, 32000)),
        Preset(name: "llama2-70b", model: "Llama-2-70B", architecture: llama(8192, 28672, 80, 64, 8, 32000)),
        Preset(name: "llama3-8b", model: "Meta-Llama-3-8B", architecture: llama(4096, 14336, 32, 32, 8, 128256)),
        Preset(name: "llama3-70b", model: "Meta-Llama-3-70B", architecture: llama(8192, 28672, 80, 64, 8, 128256)),
        Preset(name: "llama3.1-8b", model: "Llama-3.1-8B", architecture: llama(4096, 14336, 32, 32, 8, 128256)),
        Preset(name: "llama3.1-70b", model: "Llama-3.1-70B", architecture: llama(8192, 28672, 80, 64, 8, 128256)),
        Preset(name: "llama3.1-405b", model: "Llama-3.1-405B", architecture: llama(16384, 53248, 126, 128, 8, 128256)),
        Preset(
            name: "llama3.2-1b", model: "Llama-3.2-1B", architecture: llama(2048, 8192, 16, 32, 8, 128256, tied: true)),
        Preset(
            name: "llama3.2-3b", model: "Llama-3.2-3B", architecture: llama(3072, 8192, 28, 24, 8, 128256, tied: true)),
        Preset(name: "mistral-7b", model: "Mistral-7B-v0.1", architecture: llama(4096, 14336, 32, 32, 8, 32000)),
        Preset(
            name: "qwen2.5-0.5b", model: "Qwen2.5-0.5B",
            architecture: llama(896, 4864, 24, 14, 2, 151936, tied: true, bias: true)),
        Preset(
            name: "qwen2.5-1.5b", model: "Qwen2.5-1.5B",
            architecture: llama(1536, 8960, 28, 12, 2, 151936, tied: true, bias: true)),
        Preset(
            name: "qwen2.5-3b", model: "Qwen2.5-3B",
            architecture: llama(2048, 11008, 36, 16, 2, 151936, tied: true, bias: true)),
        Preset(
            name: "qwen2.5-7b", model: "Qwen2.5-7B", architecture: llama(3584, 18944, 28, 28, 4, 152064, bias: true)),
        Preset(
            name: "qwen2.5-14b", model: "Qwen2.5-14B", architecture: llama(5120, 13824, 48, 40, 8, 152064, bias: true)),
        Preset(
            name: "qwen2.5-32b", model: "Qwen2.5-32B", architecture: llama(5120, 27648, 64, 40, 8, 152064, bias: true)),
        Preset(
            name: "qwen2.5-72b", model: "Qwen2.5-72B", architecture: llama(8192, 29568, 80, 64, 8, 152064, bias: true)),
    ]

    /// What a bare size means: the newest Llama of that size, else the Qwen2.5 one (`7b`, `13b`, `30b`, `65b` stay
    /// LLaMA-1, whose 7B and 13B shapes Llama 2 shares; `33b` is LLaMA-30B's other name).
    public static let sizeAliases: [(size: String, preset: String)] = [
        ("0.5b", "qwen2.5-0.5b"), ("1b", "llama3.2-1b"), ("1.5b", "qwen2.5-1.5b"), ("3b", "llama3.2-3b"),
        ("7b", "llama-7b"), ("8b", "llama3.1-8b"), ("13b", "llama-13b"), ("14b", "qwen2.5-14b"), ("30b", "llama-30b"),
        ("32b", "qwen2.5-32b"), ("33b", "llama-30b"), ("65b", "llama-65b"), ("70b", "llama3.1-70b"),
        ("72b", "qwen2.5-72b"), ("405b", "llama3.1-405b"),
    ]

    /// The preset called `name`: a size (`70b`) or a family-qualified name (`llama2-70b`), case-insensitive.
    public static func preset(named name: String) -> Preset? {
        let key = name.lowercased()
        let resolved = sizeAliases.first { $0.size == key }?.preset ?? key
        return allPresets.first { $0.name == resolved }
    }

    /// Parses a `--what-if` list such as `8b,70b,mistral-7b,path/to/config.json`.
    ///
    /// An item that contains `/` or ends in `.json` is a path (read later); anything else must name a preset.
    /// - Throws: ``CheckpointError`` `.invalidArgument` naming an unknown size and listing the accepted ones, or
    ///   for an empty list.
    public static func requests(in list: String) throws(CheckpointError) -> [Request] {
        var result: [Request] = []
        for item in list.split(separator: ",") {
            let text = String(item).filter { $0 != " " }
            if text.isEmpty { continue }
            if text.contains("/") || text.lowercased().hasSuffix(".json") {
                result.append(.config(path: text))
                continue
            }
            let label = text.lowercased()
            guard let preset = preset(named: label) else {
                throw CheckpointError(
                    .invalidArgument,
                    "unknown model size '\(label)'; expected a size (\(sizeAliases.map(\.size).joined(separator: ", "))), "
                        + "a model (\(allPresets.map(\.name).joined(separator: ", "))) or the path of a config.json")
            }
            let request = Request.preset(label: label, preset)
            if !result.contains(request) { result.append(request) }
        }
        guard !result.isEmpty else { throw CheckpointError(.invalidArgument, "the --what-if list names no model size") }
        return result
    }
}
