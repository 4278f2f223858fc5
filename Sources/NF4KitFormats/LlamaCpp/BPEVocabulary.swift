package import NF4KitCore

/// The `tokenizer.*` metadata llama.cpp's converter writes for a byte-level BPE `tokenizer.json` (`gpt2`: Llama 3,
/// SmolLM, DeepSeek-R1-Distill-Llama), as `_set_vocab_gpt2` / `get_vocab_base` and gguf-py's `SpecialVocab` do.
///
/// Tokens: `model.vocab` and `added_tokens` by id, padded to config.json's `vocab_size` with `[PAD<i>]` (UNUSED);
/// an added token is CONTROL when marked special or when it looks special (`<|...|>`), else USER_DEFINED, every
/// other token NORMAL. Merges: `model.merges` in the `"a b"` form as they are, in the `["a", "b"]` form joined with
/// one space, a space inside a part written as U+0120. The pre-tokenizer name comes from ``BPEPreTokenizer``.
package enum BPEVocabulary {
    /// Builds the tokenizer keys for the model folder `dir` (ending in `/`), which has a `tokenizer.json` and no
    /// `tokenizer.model`.
    ///
    /// - Throws: ``CheckpointError`` `.malformedHeader` for a malformed JSON file or token id, `.unsupported` for a
    ///   tokenizer that is not byte-level BPE or whose pre-tokenizer has no llama.cpp name.
    package static func metadata(
        folder dir: String, config: LlamaModelConfig
    ) throws(CheckpointError) -> [GGUFMetadataEntry] {
        var (out, tokenizerConfig) = try LlamaVocabulary.start(dir: dir)
        func put(_ key: String, _ value: GGUFValue) { out.put(key, value) }
        let tokenizerConfigPath = dir + "tokenizer_config.json"

        let path = dir + "tokenizer.json"
        let tokenizer = try ModelSource.readJSONObject(path)
        guard let model = tokenizer["model"], model.objectValue != nil else {
            throw CheckpointError(.malformedHeader, "tokenizer.json has no 'model' object", file: path)
        }
        guard model["type"]?.stringValue == "BPE", model["byte_fallback"]?.boolValue != true else {
            // With byte_fallback the converter reads it as a SentencePiece-style vocabulary (LlamaHfVocab).
            throw CheckpointError(
                .unsupported,
                "the tokenizer.json model is \(model["type"]?.stringValue ?? "untyped")"
                    + (model["byte_fallback"]?.boolValue == true ? " with byte_fallback" : "")
                    + "; nf4kit writes llama.cpp's tokenizer keys for a SentencePiece tokenizer.model or a byte-level "
                    + "BPE tokenizer.json, so use --layout hf or convert_hf_to_gguf.py",
                file: path)
        }
        let pre = try BPEPreTokenizer.name(of: tokenizer, file: path)

        let vocabSize = config.vocabSize
        var tokens: [String?] = Array(repeating: nil, count: vocabSize)
        func place(_ text: String, _ id: Int?) throws(CheckpointError) {
            guard let id, id >= 0 else {
                throw CheckpointError(
                    .malformedHeader, "token '\(text)' has no non-negative integer id", file: path)
            }
            guard id < vocabSize else {
                throw CheckpointError(
                    .malformedHeader,
                    "token '\(text)' has id \(id), but config.json's vocab_size is \(vocabSize)", file: path)
            }
            tokens[id] = text
        }
        guard let vocab = model["vocab"]?.objectValue else {
            throw CheckpointError(.malformedHeader, "tokenizer.json's model.vocab is not an object", file: path)
        }
        for (text, id) in vocab { try place(text, id.intValue) }
        // transformers' added_tokens_decoder: tokenizer.json's added_tokens, then tokenizer_config.json's entries
        // for ids it does not have.
        var added: [Int: (text: String, special: Bool)] = [:]
        for entry in tokenizer["added_tokens"]?.arrayValue ?? [] {
            guard let text = entry["content"]?.stringValue else {
                throw CheckpointError(.malformedHeader, "an added_tokens entry has no content string", file: path)
            }
            try place(text, entry["id"]?.intValue)
            added[entry["id"]?.intValue ?? 0] = (text, entry["special"]?.boolValue ?? false)
        }
        for (id, text, special) in try LlamaVocabulary.addedTokensDecoder(tokenizerConfig, file: tokenizerConfigPath) {
            guard added[id] == nil else { continue }
            try place(text, id)
            added[id] = (text, special)
        }
        let addedTexts = Set(added.values.map(\.text))

        var types = [Int32](repeating: SentencePieceModel.PieceType.unused.rawValue, count: vocabSize)
        var texts: [GGUFValue] = []
        texts.reserveCapacity(vocabSize)
        for id in 0..<vocabSize {
            guard var text = tokens[id] else {
                texts.append(.string("[PAD\(id)]"))
                continue
            }
            if addedTexts.contains(text) {
                if added[id]?.special == true || LlamaVocabulary.looksSpecial(text) {
                    types[id] = SentencePieceModel.PieceType.control.rawValue
                } else {
                    text = String(text.map { $0 == "\u{2581}" ? " " : $0 })
                    types[id] = SentencePieceModel.PieceType.userDefined.rawValue
                }
            } else {
                types[id] = SentencePieceModel.PieceType.normal.rawValue
            }
            texts.append(.string(text))
        }
        tokens = []

        put("tokenizer.ggml.model", .string("gpt2"))
        put("tokenizer.ggml.pre", .string(pre))
        put("tokenizer.ggml.tokens", .array(.string, texts))
        put("tokenizer.ggml.token_type", .array(.int32, types.map { .int32($0) }))
        let merges = try self.merges(model["merges"], file: path)
        if !merges.isEmpty { put("tokenizer.ggml.merges", .array(.string, merges)) }

        var special = SpecialVocab(vocabCount: Int.max, types: SpecialVocab.defaultTypes)
        try special.load(folder: dir, tokenizerConfig: tokenizerConfig, config: config, parsedTokenizer: tokenizer)
        special.write(into: put)
        if vocabSize == 49152 {
            // convert_hf_to_gguf.py's LlamaModel turns add_bos off for this vocabulary size (granite small models).
            put("tokenizer.ggml.add_bos_token", .bool(false))
        }
        return out
    }

    /// `model.merges` as gguf-py's `SpecialVocab` writes them.
    package static func merges(_ value: JSONValue?, file: String) throws(CheckpointError) -> [GGUFValue] {
        guard let list = value?.arrayValue, let first = list.first else { return [] }
        var out: [GGUFValue] = []
        out.reserveCapacity(list.count)
        let pairForm = first.arrayValue != nil
        for (index, merge) in list.enumerated() {
            if !pairForm, let text = merge.stringValue {
                out.append(.string(text))
            } else if pairForm, let pair = merge.arrayValue, pair.count == 2,
                let a = pair[0].stringValue, let b = pair[1].stringValue
            {
                let escape = { (part: String) in String(part.map { $0 == " " ? "\u{120}" : $0 }) }
                out.append(.string(escape(a) + " " + escape(b)))
            } else {
                throw CheckpointError(
                    .malformedHeader,
                    "model.merges[\(index)] is \(merge); expected "
                        + (pairForm ? "a pair of strings like the first entry" : "a string like the first entry"),
                    file: file)
            }
        }
        return out
    }
}
