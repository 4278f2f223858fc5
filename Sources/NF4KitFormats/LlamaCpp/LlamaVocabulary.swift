package import NF4KitCore

/// The `tokenizer.*` metadata llama.cpp's converter writes for a Llama-family folder (spec gguf-llama.md §4).
///
/// Supported: a SentencePiece `tokenizer.model` (Llama 1/2, Mistral, TinyLlama), with `added_tokens.json`,
/// `tokenizer_config.json`'s `added_tokens_decoder`, and the special tokens, add-BOS/EOS flags, normalizer flags and chat
/// template that gguf-py's `SpecialVocab` finds in `tokenizer.json`, `tokenizer_config.json`, `chat_template.jinja` /
/// `chat_template.json` and `config.json`. A folder with only a byte-level BPE `tokenizer.json` (Llama 3, SmolLM) gets
/// the `gpt2` keys of ``BPEVocabulary``.
package enum LlamaVocabulary {
    /// Builds the tokenizer keys for the model folder `folder`.
    ///
    /// - Parameters:
    ///   - folder: The Hugging Face folder.
    ///   - config: The parsed `config.json` (its `vocab_size` pads the vocabulary; its `*_token_id` give ids).
    /// - Returns: The entries in the converter's order.
    /// - Throws: ``CheckpointError`` `.malformedHeader` for a bad `tokenizer.model` or JSON side file (file and byte
    ///   offset), `.unsupported` for a folder with neither `tokenizer.model` nor a supported `tokenizer.json`.
    package static func metadata(
        folder: String, config: LlamaModelConfig
    ) throws(CheckpointError) -> [GGUFMetadataEntry] {
        let dir = folder.hasSuffix("/") ? folder : folder + "/"
        let modelPath = dir + "tokenizer.model"
        guard FileAccess.exists(modelPath) else {
            if FileAccess.exists(dir + "tokenizer.json") {
                return try BPEVocabulary.metadata(folder: dir, config: config)
            }
            let packed = ["tokenizer.json.gz", "tokenizer.model.gz"].first { FileAccess.exists(dir + $0) }
            throw CheckpointError(
                .unsupported,
                "the folder has no tokenizer.model or tokenizer.json, so llama.cpp could not tokenize with the "
                    + "GGUF; add the tokenizer files or use --layout hf"
                    + (packed.map { " (\($0) is there: decompress it first)" } ?? ""),
                file: folder)
        }
        var (out, tokenizerConfig) = try LlamaVocabulary.start(dir: dir)
        func put(_ key: String, _ value: GGUFValue) { out.put(key, value) }
        let tokenizerConfigPath = dir + "tokenizer_config.json"

        let model = try SentencePieceModel.read(path: modelPath)
        let vocabSize = config.vocabSize
        // Padding to config.json's vocab_size is tied to the size of the tokenizer files, not to that number.
        var budget = AllocationBudget(
            file: dir + "config.json", fileByteCount: Int(try FileAccess.fileSize(modelPath)))
        try budget.charge(
            vocabSize * (2 * MemoryLayout<String>.stride + 2 * MemoryLayout<GGUFValue>.stride + 8),
            for: "padding the vocabulary to its vocab_size \(vocabSize)", at: 0)
        var tokens = (0..<vocabSize).map { "[PAD\($0)]" }
        var scores = [Float](repeating: -10000, count: vocabSize)
        var types = [Int32](repeating: SentencePieceModel.PieceType.unused.rawValue, count: vocabSize)
        for (id, piece) in model.pieces.enumerated() where id < vocabSize {
            tokens[id] = piece.text
            scores[id] = piece.score
            // The converter asks SentencePieceProcessor IsUnknown/IsControl/IsUnused/IsByte; anything else is NORMAL.
            switch piece.type {
            case .unknown, .control, .unused, .byte: types[id] = piece.type.rawValue
            case .normal, .userDefined: types[id] = SentencePieceModel.PieceType.normal.rawValue
            }
        }
        let addedPath = dir + "added_tokens.json"
        if FileAccess.exists(addedPath) {
            for (key, value) in try ModelSource.readJSONObject(addedPath) {
                guard let id = value.intValue, id >= 0 else {
                    throw CheckpointError(
                        .malformedHeader, "added token '\(key)' has id \(value), expected a non-negative integer",
                        file: addedPath)
                }
                guard id < vocabSize else { continue }
                tokens[id] = key
                scores[id] = -1000
                types[id] = SentencePieceModel.PieceType.userDefined.rawValue
            }
        }
        for (id, content, special) in try addedTokensDecoder(tokenizerConfig, file: tokenizerConfigPath) {
            guard id < vocabSize else { continue }
            if special || looksSpecial(content) {
                types[id] = SentencePieceModel.PieceType.control.rawValue
                tokens[id] = content
            } else {
                types[id] = SentencePieceModel.PieceType.userDefined.rawValue
                tokens[id] = String(content.map { $0 == "\u{2581}" ? " " : $0 })
            }
            scores[id] = -1000
        }
        put("tokenizer.ggml.model", .string("llama"))
        put("tokenizer.ggml.pre", .string("default"))
        put("tokenizer.ggml.tokens", .array(.string, tokens.map { .string($0) }))
        put("tokenizer.ggml.scores", .array(.float32, scores.map { .float32($0) }))
        put("tokenizer.ggml.token_type", .array(.int32, types.map { .int32($0) }))

        var special = SpecialVocab(vocabCount: vocabSize, types: SpecialVocab.defaultTypes)
        try special.load(folder: dir, tokenizerConfig: tokenizerConfig, config: config)
        special.write(into: put)
        if vocabSize == 32016 {
            // CodeLlama: convert_hf_to_gguf.py adds FIM ids; only `eot` has a gguf-py handler.
            var fim = SpecialVocab(vocabCount: vocabSize, types: ["prefix", "suffix", "middle", "eot"])
            try fim.load(folder: dir, tokenizerConfig: tokenizerConfig, config: config)
            for (type, id) in [("prefix", 32007), ("suffix", 32008), ("middle", 32009), ("eot", 32010)] {
                fim.setID(type, id)
            }
            fim.write(into: put)
        }
        return out
    }

    /// The entries of tokenizer_config.json's `added_tokens_decoder` (`{"128000": {"content": ..., "special": ...}}`),
    /// in file order, as both tokenizer families read them.
    /// - Throws: `.malformedHeader` naming `file` for a key that is not a non-negative integer or an entry without a
    ///   content string.
    static func addedTokensDecoder(
        _ tokenizerConfig: JSONObject?, file: String
    ) throws(CheckpointError) -> [(id: Int, content: String, special: Bool)] {
        var entries: [(id: Int, content: String, special: Bool)] = []
        for (key, entry) in tokenizerConfig?["added_tokens_decoder"]?.objectValue ?? JSONObject() {
            guard let id = Int(key), id >= 0, let content = entry["content"]?.stringValue else {
                throw CheckpointError(
                    .malformedHeader, "added_tokens_decoder entry '\(key)' needs an integer id and a content string",
                    file: file)
            }
            entries.append((id, content, entry["special"]?.boolValue ?? false))
        }
        return entries
    }

    /// What both tokenizer families start from: an empty key list and the folder's tokenizer_config.json (if any),
    /// with `tokenizer.ggml.add_space_prefix` when it says `add_prefix_space`.
    static func start(
        dir: String
    ) throws(CheckpointError) -> (metadata: [GGUFMetadataEntry], tokenizerConfig: JSONObject?) {
        var out: [GGUFMetadataEntry] = []
        let path = dir + "tokenizer_config.json"
        let tokenizerConfig = FileAccess.exists(path) ? try ModelSource.readJSONObject(path) : nil
        if let prefix = tokenizerConfig?["add_prefix_space"]?.boolValue {
            out.put("tokenizer.ggml.add_space_prefix", .bool(prefix))
        }
        return (out, tokenizerConfig)
    }

    /// convert_hf_to_gguf.py's `does_token_look_special`.
    static func looksSpecial(_ text: String) -> Bool {
        if ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(text) { return true }
        if text.hasPrefix("<|") && text.hasSuffix("|>") { return true }
        if text.hasPrefix("<\u{FF5C}") && text.hasSuffix("\u{FF5C}>") { return true }
        return text.hasPrefix("<unused") && text.hasSuffix(">")
    }
}

/// gguf-py's `SpecialVocab` (no merges): special-token ids, add-token flags, normalizer flags and the chat template.
struct SpecialVocab {
    static let defaultTypes = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]
    /// gguf-py writer methods that exist (`add_<type>_token_id`); other types are skipped as gguf-py does.
    static let idKeys: [String: String] = [
        "bos": "tokenizer.ggml.bos_token_id", "eos": "tokenizer.ggml.eos_token_id",
        "unk": "tokenizer.ggml.unknown_token_id", "sep": "tokenizer.ggml.seperator_token_id",
        "pad": "tokenizer.ggml.padding_token_id", "mask": "tokenizer.ggml.mask_token_id",
        "eot": "tokenizer.ggml.eot_token_id", "eom": "tokenizer.ggml.eom_token_id",
    ]
    static let addKeys: [String: String] = [
        "bos": "tokenizer.ggml.add_bos_token", "eos": "tokenizer.ggml.add_eos_token",
        "sep": "tokenizer.ggml.add_sep_token",
    ]

    let vocabCount: Int
    var types: [String]
    var ids: [(String, Int)] = []
    var add: [(String, Bool)] = []
    var chatTemplate: ChatTemplate?
    var lowercase: Bool?
    var stripAccents: Bool?

    enum ChatTemplate {
        case single(String)
        case named([(name: String, template: String)])
    }

    init(vocabCount: Int, types: [String]) {
        self.vocabCount = vocabCount
        self.types = types
    }

    mutating func setID(_ type: String, _ id: Int) {
        guard id < vocabCount, !ids.contains(where: { $0.0 == type }) else { return }
        ids.append((type, id))
    }

    private mutating func setAdd(_ type: String, _ value: Bool, onlyIfAbsent: Bool) {
        if let index = add.firstIndex(where: { $0.0 == type }) {
            if !onlyIfAbsent { add[index].1 = value }
        } else {
            add.append((type, value))
        }
    }

    private func addValue(_ type: String) -> Bool? { add.first { $0.0 == type }?.1 }

    private static func tokenText(_ value: JSONValue?) -> String? {
        if let text = value?.stringValue { return text }
        return value?["content"]?.stringValue
    }

    /// - Parameter parsedTokenizer: `tokenizer.json` when the caller has parsed it already (else it is read here).
    mutating func load(
        folder dir: String, tokenizerConfig original: JSONObject?, config: LlamaModelConfig,
        parsedTokenizer: JSONObject? = nil
    )
        throws(CheckpointError)
    {
        var tokenizerConfig = original.map {
            Dictionary($0.members.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        }
        var addedTokens: [JSONValue] = []
        let tokenizerPath = dir + "tokenizer.json"
        var parsed = parsedTokenizer
        if parsed == nil, FileAccess.exists(tokenizerPath) { parsed = try ModelSource.readJSONObject(tokenizerPath) }
        if let tokenizer = parsed {
            if let normalizer = tokenizer["normalizer"], case .object = normalizer { parseNormalizer(normalizer) }
            addedTokens = tokenizer["added_tokens"]?.arrayValue ?? []
            var bos = tokenizerConfig?["bos_token"]?.stringValue
            var cls = tokenizerConfig?["cls_token"]?.stringValue
            var eos = tokenizerConfig?["eos_token"]?.stringValue
            var sep = tokenizerConfig?["sep_token"]?.stringValue
            let hasConfig = !(tokenizerConfig?.isEmpty ?? true)
            if (bos ?? "").isEmpty, let c = cls, !c.isEmpty, hasConfig {
                tokenizerConfig?["bos_token"] = .string(c)
                bos = c
            }
            if (eos ?? "").isEmpty, let s = sep, !s.isEmpty, hasConfig {
                tokenizerConfig?["eos_token"] = .string(s)
                eos = s
            }
            if let post = tokenizer["post_processor"], case .object = post {
                let processors = post["processors"]?.arrayValue ?? [post]
                for processor in processors {
                    switch processor["type"]?.stringValue {
                    case "ByteLevel":
                        setAdd("bos", false, onlyIfAbsent: true)
                        setAdd("eos", false, onlyIfAbsent: true)
                    case "RobertaProcessing":
                        setAdd("bos", true, onlyIfAbsent: false)
                        setAdd("eos", true, onlyIfAbsent: false)
                        setAdd("sep", true, onlyIfAbsent: false)
                        if (cls ?? "").isEmpty, hasConfig {
                            cls = processor["cls"]?.arrayValue?.first?.stringValue ?? bos
                            tokenizerConfig?["cls_token"] = cls.map { .string($0) } ?? .null
                        }
                        if (sep ?? "").isEmpty, hasConfig {
                            sep = processor["sep"]?.arrayValue?.first?.stringValue ?? eos
                            tokenizerConfig?["sep_token"] = sep.map { .string($0) } ?? .null
                        }
                    case "TemplateProcessing":
                        let single = processor["single"]?.arrayValue ?? []
                        var pair = processor["pair"]?.arrayValue ?? []
                        var first: String?
                        var last: String?
                        if single.count > 1 {
                            if let f = single[0]["SpecialToken"]?["id"]?.stringValue, !f.isEmpty {
                                first = f
                                if !hasConfig {
                                    bos = f
                                } else if f != bos && f != cls {
                                    if (bos ?? "").isEmpty { tokenizerConfig?["bos_token"] = .string(f); bos = f }
                                    if (cls ?? "").isEmpty { tokenizerConfig?["cls_token"] = .string(f); cls = f }
                                }
                                setAdd("bos", f == bos || f == cls, onlyIfAbsent: false)
                            }
                            if let l = single[single.count - 1]["SpecialToken"]?["id"]?.stringValue, !l.isEmpty {
                                last = l
                                if !hasConfig {
                                    eos = l
                                } else if l != eos {
                                    if !types.contains("eot") {
                                        types.append("eot")
                                        tokenizerConfig?["eot_token"] = eos.map { .string($0) } ?? .null
                                    } else if !types.contains("eom") {
                                        types.append("eom")
                                        tokenizerConfig?["eom_token"] = eos.map { .string($0) } ?? .null
                                    }
                                    tokenizerConfig?["eos_token"] = .string(l)
                                    eos = l
                                }
                                setAdd("eos", l == eos, onlyIfAbsent: false)
                            }
                        }
                        if !pair.isEmpty {
                            let start = first != nil && pair[0]["SpecialToken"]?["id"]?.stringValue == first ? 1 : 0
                            let stop =
                                last != nil && pair[pair.count - 1]["SpecialToken"]?["id"]?.stringValue == last
                                ? pair.count - 1 : pair.count
                            pair = start < stop ? Array(pair[start..<stop]) : []
                            if !pair.isEmpty {
                                let a = pair[0]["Sequence"]?["id"]?.stringValue
                                let b = pair[pair.count - 1]["Sequence"]?["id"]?.stringValue
                                if a == "A", b == "B", pair.count > 2 {
                                    let middle = Array(pair[1..<(pair.count - 1)])
                                    var addSep = false
                                    if let entry = middle[0]["SpecialToken"]?["id"]?.stringValue, !entry.isEmpty {
                                        if (entry == sep || entry == eos) && last == nil { addSep = true }
                                    }
                                    if middle.count == 2,
                                        let entry = middle[1]["SpecialToken"]?["id"]?.stringValue, !entry.isEmpty,
                                        entry == sep || entry == eos
                                    {
                                        addSep = true
                                    }
                                    setAdd("sep", addSep, onlyIfAbsent: false)
                                    if addSep, (sep ?? "").isEmpty, hasConfig {
                                        tokenizerConfig?["sep_token"] = eos.map { .string($0) } ?? .null
                                    }
                                }
                            }
                        }
                    default:
                        break
                    }
                }
            }
        }
        if let tokenizerConfig, !tokenizerConfig.isEmpty {
            var alternative: ChatTemplate?
            let jinja = dir + "chat_template.jinja"
            let jsonPath = dir + "chat_template.json"
            if FileAccess.exists(jinja) {
                let text = try Self.readText(jinja)
                let extraDir = dir + "additional_chat_templates"
                let extras =
                    FileAccess.isDirectory(extraDir)
                    ? try FileAccess.list(extraDir).filter { $0.hasSuffix(".jinja") } : []
                if extras.isEmpty {
                    alternative = .single(text)
                } else {
                    var named = [(name: "default", template: text)]
                    for file in extras {
                        named.append((String(file.dropLast(".jinja".count)), try Self.readText(extraDir + "/" + file)))
                    }
                    alternative = .named(named)
                }
            } else if FileAccess.exists(jsonPath) {
                alternative = Self.template(try ModelSource.readJSONObject(jsonPath)["chat_template"])
            }
            if let value = tokenizerConfig["chat_template"] {
                chatTemplate = Self.template(value)
            } else {
                chatTemplate = alternative
            }
            for type in types {
                if let flag = tokenizerConfig["add_\(type)_token"]?.boolValue {
                    setAdd(type, flag, onlyIfAbsent: true)
                }
                guard let content = Self.tokenText(tokenizerConfig["\(type)_token"]) else { continue }
                let id = addedTokens.first { $0["content"]?.stringValue == content }?["id"]?.intValue
                if let id { try set(type, id, file: tokenizerPath) }
            }
        }
        for type in types {
            var value = config.json["\(type)_token_id"]
            if value == nil || value?.isNull == true { value = config.json["text_config"]?["\(type)_token_id"] }
            if let id = value?.intValue, value?.boolValue == nil { try set(type, id, file: config.file) }
        }
    }

    private mutating func set(_ type: String, _ id: Int, file: String?) throws(CheckpointError) {
        guard id >= 0 else {
            throw CheckpointError(.malformedHeader, "special token '\(type)' has the negative id \(id)", file: file)
        }
        setID(type, id)
    }

    private static func template(_ value: JSONValue?) -> ChatTemplate? {
        if let text = value?.stringValue { return .single(text) }
        guard let list = value?.arrayValue else { return nil }
        return .named(list.map { ($0["name"]?.stringValue ?? "", $0["template"]?.stringValue ?? "") })
    }

    private static func readText(_ path: String) throws(CheckpointError) -> String {
        let bytes = try FileAccess.readSmallFile(path)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CheckpointError(.malformedHeader, "the file is not valid UTF-8", file: path)
        }
        return text
    }

    private mutating func parseNormalizer(_ normalizer: JSONValue) {
        switch normalizer["type"]?.stringValue {
        case "Lowercase": lowercase = true
        case "StripAccents": stripAccents = true
        case "BertNormalizer":
            if let v = normalizer["lowercase"]?.boolValue { lowercase = v }
            if let v = normalizer["strip_accents"]?.boolValue { stripAccents = v }
        case "Sequence":
            for inner in normalizer["normalizers"]?.arrayValue ?? [] { parseNormalizer(inner) }
        default: break
        }
    }

    func write(into put: (String, GGUFValue) -> Void) {
        for (type, id) in ids {
            guard let key = Self.idKeys[type], let value = UInt32(exactly: id) else { continue }
            put(key, .uint32(value))
        }
        for (type, value) in add {
            guard let key = Self.addKeys[type] else { continue }
            put(key, .bool(value))
        }
        switch chatTemplate {
        case .single(let text):
            put("tokenizer.chat_template", .string(text))
        case .named(let list):
            var names: [String] = []
            var fallback: String?
            for (rawName, template) in list {
                let name = String(rawName.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
                guard !name.isEmpty else { continue }
                if name == "default" {
                    fallback = template
                } else {
                    names.append(name)
                    put("tokenizer.chat_template.\(name)", .string(template))
                }
            }
            if !names.isEmpty { put("tokenizer.chat_templates", .array(.string, names.sorted().map { .string($0) })) }
            if let fallback { put("tokenizer.chat_template", .string(fallback)) }
        case nil:
            break
        }
        if let lowercase { put("tokenizer.ggml.normalizer.lowercase", .bool(lowercase)) }
        if let stripAccents { put("tokenizer.ggml.normalizer.strip_accents", .bool(stripAccents)) }
    }
}

extension [GGUFMetadataEntry] {
    /// Sets `key` as gguf-py's writer does: a repeated key overwrites its value in place.
    mutating func put(_ key: String, _ value: GGUFValue) {
        if let index = firstIndex(where: { $0.key == key }) {
            self[index].value = value
        } else {
            append(GGUFMetadataEntry(key: key, value: value))
        }
    }
}
