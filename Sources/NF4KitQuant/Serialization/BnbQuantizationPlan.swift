public import NF4KitCore

/// Which tensors of a checkpoint become 4-bit, following what transformers quantizes (spec 6.4).
///
/// transformers converts `nn.Linear` layers except the output head, embeddings and anything in
/// `llm_int8_skip_modules`. A checkpoint does not say which tensors belong to Linear layers, so the default rule
/// uses the stored names and shapes: a tensor is quantized when its name ends in `.weight`, it is 2-D with a float
/// dtype, and its module name (the name without `.weight`) matches none of ``defaultExclusions``.
///
/// On top of that, `skip` globs leave matching tensors unquantized and `include` globs force matching tensors of any
/// rank or name to be quantized (`nf4kit convert --include`, e.g. a file of 1-D tensors). Skip wins over include.
/// Both are matched against the full tensor name and against its module name; `*` matches any run of characters
/// (dots included), `?` one character. Companion tensors of 4-bit groups are never selected; an already
/// quantized input is detected with ``BnbQuantizedWeight/groups(in:)-swift.type.method``, not here.
public struct BnbQuantizationPlan: Sendable, Hashable {
    /// Modules the default rule never quantizes: the output head, embeddings, norms, and common classifier heads;
    /// in a llama.cpp GGUF, `token_embd` (the embeddings) and the top-level `output` (the output head).
    public static let defaultExclusions = [
        "lm_head", "*.lm_head", "*embed*", "*norm*", "wte", "*.wte", "wpe", "*.wpe", "score", "*.score", "classifier",
        "*.classifier", "*token_embd*", "output",
    ]

    /// Globs of tensors to quantize regardless of the default rule.
    public var include: [String]
    /// Globs of tensors to leave unquantized.
    public var skip: [String]

    /// Creates a plan.
    public init(include: [String] = [], skip: [String] = []) {
        self.include = include
        self.skip = skip
    }

    /// Whether the tensor `name` of `dtype` and `shape` is quantized under this plan.
    ///
    /// A tensor forced by `include` but not of a float dtype returns `true` here; ``selectedNames(in:)`` rejects it.
    public func shouldQuantize(name: String, dtype: DType, shape: Shape) -> Bool {
        guard !BnbQuantizedWeight.isCompanionName(name) else { return false }
        let module = name.hasSuffix(".weight") ? String(name.dropLast(7)) : name
        func matches(_ patterns: [String]) -> Bool {
            patterns.contains { Self.glob($0, matches: name) || Self.glob($0, matches: module) }
        }
        if matches(skip) { return false }
        if matches(include) { return shape.checkedElementCount.map { $0 > 0 } ?? false }
        guard name.hasSuffix(".weight"), shape.rank == 2, dtype.isConvertibleFloat else { return false }
        return !Self.defaultExclusions.contains { Self.glob($0, matches: module) }
    }

    /// Whether the tensor is a 2-D `.weight` the default rule would have quantized but `skip` keeps in full precision.
    ///
    /// transformers must be told about such layers through `llm_int8_skip_modules`, or it builds broken 4-bit
    /// layers for them (spec 6.4).
    public func isSkippedLinear(name: String, dtype: DType, shape: Shape) -> Bool {
        guard name.hasSuffix(".weight"), shape.rank == 2, dtype.isConvertibleFloat else { return false }
        let module = String(name.dropLast(7))
        guard !Self.defaultExclusions.contains(where: { Self.glob($0, matches: module) }) else { return false }
        return !shouldQuantize(name: name, dtype: dtype, shape: shape)
    }

    /// The names of the tensors to quantize, in checkpoint order.
    ///
    /// - Throws: ``CheckpointError`` `.invalidArgument` naming a tensor that `include` selects but that is not
    ///   F16, BF16, F32 or F64.
    public func selectedNames(in tensors: [Tensor]) throws(CheckpointError) -> [String] {
        var names: [String] = []
        for t in tensors where shouldQuantize(name: t.name, dtype: t.dtype, shape: t.shape) {
            guard t.dtype.isConvertibleFloat else {
                throw CheckpointError(
                    .invalidArgument, "tensor '\(t.name)' matches an include pattern but has dtype \(t.dtype); only F16, BF16, F32 and F64 can be quantized",
                    file: t.descriptor.file, byteOffset: t.descriptor.fileOffset, tensor: t.name)
            }
            names.append(t.name)
        }
        return names
    }

    /// Whether `text` matches the glob `pattern` (`*` any run including dots, `?` one character).
    /// - Complexity: O(pattern × text) in the worst case.
    public static func glob(_ pattern: String, matches text: String) -> Bool {
        let p = Array(pattern.utf8)
        let t = Array(text.utf8)
        var pi = 0
        var ti = 0
        var starP = -1
        var starT = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) {
                pi += 1
                ti += 1
            } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
                starP = pi
                starT = ti
                pi += 1
            } else if starP >= 0 {
                pi = starP + 1
                starT += 1
                ti = starT
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
