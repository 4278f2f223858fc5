public import NF4KitCore

/// Which tensors of a checkpoint become 4-bit, following what transformers quantizes (spec 6.4).
///
/// transformers converts `nn.Linear` layers except the output head, embeddings and anything in
/// `llm_int8_skip_modules`. A checkpoint does not say which tensors belong to Linear layers, so the default rule
/// uses the stored names and shapes: a tensor is quantized when its name ends in `.weight`, it is 2-D with a float
/// dtype, and its module name (the name without `.weight`) matches none of ``defaultExclusions``.
///
/// On top of that, `skip` patterns leave matching tensors unquantized and `include` patterns force matching tensors
/// of any rank or name to be quantized (`nf4kit convert --include`, e.g. a file of 1-D tensors). Skip wins over
/// include. A pattern is a module name or a glob (``pattern(_:selects:)``): a name as transformers users write
/// `llm_int8_skip_modules` (`down_proj`, `mlp`, `model.layers.0`), or, when it holds `*` or `?`, a glob matched
/// against the full tensor name and its module name. Companion tensors of 4-bit groups are never selected; an
/// already quantized input is detected with ``BnbQuantizedWeight/groups(in:)-swift.type.method``, not here.
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
        func matches(_ patterns: [String]) -> Bool { patterns.contains { Self.pattern($0, selects: name) } }
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
                    .invalidArgument,
                    "tensor '\(t.name)' matches an include pattern but has dtype \(t.dtype); only F16, BF16, F32 and F64 can be quantized",
                    file: t.descriptor.file, byteOffset: t.descriptor.fileOffset, tensor: t.name)
            }
            names.append(t.name)
        }
        return names
    }

    /// Whether the `--skip`/`--include` pattern `pattern` selects the tensor `name`.
    ///
    /// - A pattern with `*` or `?` is a glob (``glob(_:matches:)``) matched against the full tensor name and against
    ///   its module name (the name without `.weight`): `*down_proj*`, `model.layers.1?.*`.
    /// - Any other pattern is a module name. It selects a tensor when it is the full tensor name, or when its dotted
    ///   components appear, whole and in order, among the components of the tensor's module (the name without its
    ///   last component, `.weight`/`.bias`): `down_proj` selects `model.layers.0.mlp.down_proj.weight`, `mlp` every
    ///   MLP projection, `layers.0` everything in layer 0, `model.layers.0.mlp.down_proj` that one module. This is
    ///   transformers' `llm_int8_skip_modules` rule (4.x: the module's own name, or `NAME.` inside its dotted name;
    ///   5.x: the dotted name starts or ends with NAME) held to whole components, so `proj` selects no `q_proj` and
    ///   `layers.1` nothing of `layers.10`.
    public static func pattern(_ pattern: String, selects name: String) -> Bool {
        if pattern.contains("*") || pattern.contains("?") {
            let module = name.hasSuffix(".weight") ? String(name.dropLast(7)) : name
            return glob(pattern, matches: name) || glob(pattern, matches: module)
        }
        guard !pattern.isEmpty else { return false }
        if pattern == name { return true }
        guard let dot = name.lastIndex(of: ".") else { return false }
        let module = name[..<dot]
        if module == pattern { return true }
        // Whole components: compare with dots around both, so `.down_proj.` is found in `.model....mlp.down_proj.`.
        return ("." + module + ".").contains("." + pattern + ".")
    }

    /// The patterns of ``skip`` and of ``include`` that select no tensor of `tensors` (``pattern(_:selects:)``);
    /// `nf4kit convert` warns about them, since a pattern that matches nothing is usually a typo.
    /// - Complexity: O(patterns × tensors).
    public func unmatchedPatterns(in tensors: [Tensor]) -> (skip: [String], include: [String]) {
        func unmatched(_ patterns: [String]) -> [String] {
            patterns.filter { pattern in !tensors.contains { Self.pattern(pattern, selects: $0.name) } }
        }
        return (unmatched(skip), unmatched(include))
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
