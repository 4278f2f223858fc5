import NF4KitCore
import NF4KitFormats

/// A GGUF's SentencePiece vocabulary (`tokenizer.ggml.model` = `llama`) and the tokenizer files transformers builds
/// from it: a byte-fallback BPE whose merges are recovered from the vocabulary and scores.
///
/// The rules (transformers 5's GGUF tokenizer conversion, checked against golden from-gguf/): every token that splits
/// into two tokens of the vocabulary gives a merge; a token's merges are ordered by the ids of their left then right
/// pieces, and all merges by the token's score, then the left piece's length, then the right's, descending, ties
/// kept in vocabulary order. Lengths count Unicode scalars. The added tokens are the CONTROL tokens (type 3) and the
/// `<unk>`, `<s>`, `</s>` defaults of Llama's tokenizer where the vocabulary has them, all special; USER_DEFINED
/// tokens (type 4) are added as non-special.
struct GGUFSentencePieceVocabulary {
    var tokens: [String]
    var scores: [Float]
    var types: [Int32]
    var bos: String?
    var eos: String?
    var unk: String?
    var pad: String?
    var addBOS: Bool
    var addEOS: Bool

    init(_ file: GGUFFile) throws(CheckpointError) {
        let model = file["tokenizer.ggml.model"]?.stringValue
        guard model == "llama" else {
            throw CheckpointError(
                .unsupported,
                "GGUF import rebuilds SentencePiece tokenizers (tokenizer.ggml.model 'llama'); this file has "
                    + "\(model.map { "'\($0)'" } ?? "none")",
                file: file.path, byteOffset: GGUFImport.recordOffset(file, "tokenizer.ggml.model"))
        }
        func array(_ key: String) throws(CheckpointError) -> [GGUFValue] {
            guard let elements = file[key]?.arrayElements else {
                throw CheckpointError(
                    .malformedHeader, "the SentencePiece GGUF has no array \(key)", file: file.path,
                    byteOffset: GGUFImport.recordOffset(file, key))
            }
            return elements
        }
        let tokenValues = try array("tokenizer.ggml.tokens")
        tokens = tokenValues.compactMap(\.stringValue)
        scores = try array("tokenizer.ggml.scores").compactMap { if case .float32(let v) = $0 { v } else { nil } }
        types =
            try (file["tokenizer.ggml.token_type"] == nil ? [] : array("tokenizer.ggml.token_type")).compactMap {
                $0.integerValue.map { Int32(truncatingIfNeeded: $0) }
            }
        guard tokens.count == tokenValues.count, scores.count == tokens.count,
            types.isEmpty || types.count == tokens.count
        else {
            throw CheckpointError(
                .malformedHeader,
                "tokenizer.ggml.tokens (\(tokenValues.count) strings), scores (FLOAT32) and token_type must be "
                    + "arrays of the same length",
                file: file.path, byteOffset: GGUFImport.recordOffset(file, "tokenizer.ggml.scores"))
        }
        let all = tokens
        func token(_ key: String) -> String? {
            guard let id = file["tokenizer.ggml.\(key)"]?.integerValue, id >= 0, id < all.count else { return nil }
            return all[Int(id)]
        }
        bos = token("bos_token_id")
        eos = token("eos_token_id")
        unk = token("unknown_token_id")
        pad = token("padding_token_id")
        // llama.cpp adds BOS to a SentencePiece vocabulary that does not say otherwise (as transformers assumes).
        if case .bool(let flag)? = file["tokenizer.ggml.add_bos_token"] { addBOS = flag } else { addBOS = true }
        if case .bool(let flag)? = file["tokenizer.ggml.add_eos_token"] { addEOS = flag } else { addEOS = false }
    }

    /// The merges transformers derives from the vocabulary and scores (see the type's rules).
    func merges() -> [(String, String)] {
        var id: [String: Int] = [:]
        for (index, token) in tokens.enumerated() { id[token] = index }
        // dict(zip(tokens, scores)): first position of each token, last score.
        var order: [String] = []
        var score: [String: Float] = [:]
        for (token, value) in zip(tokens, scores) {
            if score.updateValue(value, forKey: token) == nil { order.append(token) }
        }
        var candidates: [(left: String, right: String, score: Float, leftLength: Int, rightLength: Int)] = []
        for token in order {
            let scalars = Array(token.unicodeScalars)
            var local: [(left: String, right: String, leftID: Int, rightID: Int, leftLength: Int)] = []
            for cut in scalars.indices.dropFirst() {
                var left = String.UnicodeScalarView()
                left.append(contentsOf: scalars[..<cut])
                var right = String.UnicodeScalarView()
                right.append(contentsOf: scalars[cut...])
                let l = String(left)
                let r = String(right)
                if let li = id[l], let ri = id[r] { local.append((l, r, li, ri, cut)) }
            }
            // Python's sorted is stable; so is this (ties keep their cut order).
            let sorted = local.enumerated().sorted {
                ($0.element.leftID, $0.element.rightID, $0.offset) < ($1.element.leftID, $1.element.rightID, $1.offset)
            }
            for (_, m) in sorted {
                candidates.append((m.left, m.right, score[token]!, m.leftLength, scalars.count - m.leftLength))
            }
        }
        // sorted(key=(score, len(l), len(r)), reverse=True): descending, stable.
        let ranked = candidates.enumerated().sorted { a, b in
            let x = a.element
            let y = b.element
            if x.score != y.score { return x.score > y.score }
            if x.leftLength != y.leftLength { return x.leftLength > y.leftLength }
            if x.rightLength != y.rightLength { return x.rightLength > y.rightLength }
            return a.offset < b.offset
        }
        return ranked.map { ($0.element.left, $0.element.right) }
    }

    /// The added tokens: id, content, special.
    func addedTokens() -> [(id: Int, content: String, special: Bool)] {
        var added: [Int: (String, Bool)] = [:]
        for (index, token) in tokens.enumerated() {
            let type = types.isEmpty ? 1 : types[index]
            if type == 3 { added[index] = (token, true) }
        }
        for name in ["<unk>", "<s>", "</s>"] {
            if let index = tokens.firstIndex(of: name) { added[index] = (name, true) }
        }
        for (index, token) in tokens.enumerated() where !types.isEmpty && types[index] == 4 && added[index] == nil {
            added[index] = (token, false)
        }
        return added.keys.sorted().map { ($0, added[$0]!.0, added[$0]!.1) }
    }

    /// `tokenizer.json` as the tokenizers library saves it (indent 2, UTF-8 kept, keys in its order).
    func tokenizerJSON() -> [UInt8] {
        let added = addedTokens().map { token in
            JSONValue.object(
                JSONObject([
                    ("id", .integer(token.id)), ("content", .string(token.content)), ("single_word", .bool(false)),
                    ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(false)),
                    ("special", .bool(token.special)),
                ]))
        }
        func special(_ token: String, _ typeID: Int) -> JSONValue {
            .object(
                JSONObject([
                    ("SpecialToken", .object(JSONObject([("id", .string(token)), ("type_id", .integer(typeID))])))
                ]))
        }
        func sequence(_ name: String, _ typeID: Int) -> JSONValue {
            .object(
                JSONObject([("Sequence", .object(JSONObject([("id", .string(name)), ("type_id", .integer(typeID))])))]))
        }
        let bosToken = addBOS ? bos : nil
        let eosToken = addEOS ? eos : nil
        var single: [JSONValue] = []
        var pair: [JSONValue] = []
        if let bosToken { single.append(special(bosToken, 0)) }
        single.append(sequence("A", 0))
        if let eosToken { single.append(special(eosToken, 0)) }
        pair = single
        if let bosToken { pair.append(special(bosToken, 1)) }
        pair.append(sequence("B", 1))
        if let eosToken { pair.append(special(eosToken, 1)) }
        var specials: [(key: String, value: JSONValue)] = []
        for token in Set([bosToken, eosToken].compactMap { $0 }).sorted() {
            let ids = tokens.firstIndex(of: token).map { [JSONValue.integer($0)] } ?? []
            specials.append(
                (
                    token,
                    .object(
                        JSONObject([("id", .string(token)), ("ids", .array(ids)), ("tokens", .array([.string(token)]))])
                    )
                ))
        }
        var vocab: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        var lastID: [String: Int] = [:]
        for (index, token) in tokens.enumerated() { lastID[token] = index }
        for token in tokens where seen.insert(token).inserted { vocab.append((token, .integer(lastID[token]!))) }
        vocab.sort { ($0.value.intValue ?? 0) < ($1.value.intValue ?? 0) }
        let document = JSONValue.object(
            JSONObject([
                ("version", .string("1.0")),
                ("truncation", .null),
                ("padding", .null),
                ("added_tokens", .array(added)),
                ("normalizer", .null),
                (
                    "pre_tokenizer",
                    .object(
                        JSONObject([
                            ("type", .string("Metaspace")), ("replacement", .string("\u{2581}")),
                            ("prepend_scheme", .string("first")), ("split", .bool(false)),
                        ]))
                ),
                (
                    "post_processor",
                    .object(
                        JSONObject([
                            ("type", .string("TemplateProcessing")), ("single", .array(single)), ("pair", .array(pair)),
                            ("special_tokens", .object(JSONObject(specials))),
                        ]))
                ),
                (
                    "decoder",
                    .object(
                        JSONObject([
                            ("type", .string("Sequence")),
                            (
                                "decoders",
                                .array([
                                    .object(
                                        JSONObject([
                                            ("type", .string("Replace")),
                                            ("pattern", .object(JSONObject([("String", .string("\u{2581}"))]))),
                                            ("content", .string(" ")),
                                        ])),
                                    .object(JSONObject([("type", .string("ByteFallback"))])),
                                    .object(JSONObject([("type", .string("Fuse"))])),
                                    .object(
                                        JSONObject([
                                            ("type", .string("Strip")), ("content", .string(" ")),
                                            ("start", .integer(1)), ("stop", .integer(0)),
                                        ])),
                                ])
                            ),
                        ]))
                ),
                (
                    "model",
                    .object(
                        JSONObject([
                            ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null),
                            ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null),
                            ("fuse_unk", .bool(true)), ("byte_fallback", .bool(true)), ("ignore_merges", .bool(false)),
                            ("vocab", .object(JSONObject(vocab))),
                            ("merges", .array(merges().map { .array([.string($0.0), .string($0.1)]) })),
                        ]))
                ),
            ]))
        return JSONWriter(indent: 2, itemSeparator: ",", keySeparator: ": ").bytes(document)
    }

    /// `tokenizer_config.json` as transformers 5 saves it for a tokenizer read from a GGUF (sorted keys, indent 2).
    func tokenizerConfigJSON() -> [UInt8] {
        func token(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        let document = JSONValue.object(
            JSONObject([
                ("backend", .string("tokenizers")),
                ("bos_token", token(bos)),
                ("eos_token", token(eos)),
                ("is_local", .bool(true)),
                ("local_files_only", .bool(false)),
                // int(1e30): transformers' "no limit" (VERY_LARGE_INTEGER).
                ("model_max_length", .number("1000000000000000019884624838656")),
                ("pad_token", token(pad)),
                ("tokenizer_class", .string("TokenizersBackend")),
                ("unk_token", token(unk)),
            ]))
        return JSONWriter.pythonPretty.bytes(document) + Array("\n".utf8)
    }
}
