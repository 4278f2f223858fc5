package import NF4KitCore

/// The `tokenizer.ggml.pre` name of a byte-level BPE `tokenizer.json`, read from its `pre_tokenizer` and `normalizer`.
///
/// convert_hf_to_gguf.py runs the Hugging Face tokenizer on a fixed text and looks the SHA-256 of the token ids up in
/// a table of known models (`get_vocab_base_pre`); an unknown hash is refused. nf4kit cannot run that tokenizer, so it
/// names the pre-tokenizer from the configuration that decides how text is split: the `Split` regexes, the `Digits`
/// and `ByteLevel` steps and their flags, with no normalizer. Each entry of ``known`` is a configuration that a real
/// `tokenizer.json` carries, mapped to the name the converter writes for that tokenizer, and its splitting is the one
/// llama.cpp implements for that name (src/llama-vocab.cpp). Anything else is refused, as the converter refuses an
/// unknown hash.
package enum BPEPreTokenizer {
    /// One step of a `pre_tokenizer`, with the settings that change how text is split (offset trimming does not).
    package enum Step: Equatable, Sendable {
        /// `Split` with a regex `pattern`, its `behavior` and `invert`.
        case split(regex: String, behavior: String, invert: Bool)
        /// `ByteLevel` (`add_prefix_space`, `use_regex`: the GPT-2 regex split before mapping bytes).
        case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
        /// `Digits` (`individual_digits`).
        case digits(individual: Bool)
    }

    /// A configuration and the `tokenizer.ggml.pre` name convert_hf_to_gguf.py gives the models that use it.
    package struct Entry: Sendable {
        package var name: String
        package var steps: [Step]
        /// The models the entry was checked on.
        package var models: String
    }

    /// The split regex of Llama 3's `tokenizer.json` (llama.cpp's LLAMA3 pre-tokenizer adapts it without `(?i:`).
    static let llama3Regex =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The configurations nf4kit names.
    package static let known: [Entry] = [
        Entry(
            name: "llama-bpe",
            steps: [
                .split(regex: llama3Regex, behavior: "Isolated", invert: false),
                .byteLevel(addPrefixSpace: false, useRegex: false),
            ],
            models: "Llama 3, 3.1, 3.2, 3.3; DeepSeek-R1-Distill-Llama"),
        Entry(
            name: "smollm",
            steps: [.digits(individual: true), .byteLevel(addPrefixSpace: false, useRegex: true)],
            models: "SmolLM, SmolLM2"),
        Entry(
            name: "gpt-2",
            steps: [.byteLevel(addPrefixSpace: false, useRegex: true)],
            models: "GPT-2's byte-level BPE"),
    ]

    /// The pre-tokenizer name for a parsed `tokenizer.json`.
    ///
    /// - Parameters:
    ///   - tokenizer: The parsed file.
    ///   - file: Its path, for errors.
    /// - Throws: ``CheckpointError`` `.unsupported` (exit 65) for a configuration not in ``known``, naming the file
    ///   and `--layout hf`.
    package static func name(of tokenizer: JSONObject, file: String) throws(CheckpointError) -> String {
        let steps = self.steps(tokenizer["pre_tokenizer"])
        let normalizer = tokenizer["normalizer"]
        if let steps, normalizer == nil || normalizer?.isNull == true,
            let entry = known.first(where: { $0.steps == steps })
        {
            return entry.name
        }
        let what =
            normalizer != nil && normalizer?.isNull == false
            ? "its normalizer is set" : "its pre_tokenizer is not one nf4kit knows"
        throw CheckpointError(
            .unsupported,
            "the BPE tokenizer's pre-tokenizer cannot be named for llama.cpp (\(what)); nf4kit names "
                + known.map { "\($0.name) (\($0.models))" }.joined(separator: ", ")
                + ". Use --layout hf, or llama.cpp's convert_hf_to_gguf.py if it knows the model",
            file: file)
    }

    /// The steps of a `pre_tokenizer` value (a `Sequence` flattened), or nil for one with an unknown kind or setting.
    package static func steps(_ value: JSONValue?) -> [Step]? {
        guard let value, value.objectValue != nil else { return nil }
        switch value["type"]?.stringValue {
        case "Sequence":
            guard let list = value["pretokenizers"]?.arrayValue, !list.isEmpty else { return nil }
            var out: [Step] = []
            for inner in list {
                guard let steps = steps(inner) else { return nil }
                out += steps
            }
            return out
        case "Split":
            guard let regex = value["pattern"]?["Regex"]?.stringValue,
                let behavior = value["behavior"]?.stringValue
            else { return nil }
            return [.split(regex: regex, behavior: behavior, invert: value["invert"]?.boolValue ?? false)]
        case "ByteLevel":
            // tokenizers' defaults: add_prefix_space true, use_regex true.
            return [
                .byteLevel(
                    addPrefixSpace: value["add_prefix_space"]?.boolValue ?? true,
                    useRegex: value["use_regex"]?.boolValue ?? true)
            ]
        case "Digits":
            return [.digits(individual: value["individual_digits"]?.boolValue ?? false)]
        default:
            return nil
        }
    }
}
