public import NF4KitCore

/// Which weights of a checkpoint become 4-bit, following what transformers quantizes (spec 6.4).
///
/// transformers converts `nn.Linear` layers except the output head, embeddings and anything in
/// `llm_int8_skip_modules`. A checkpoint does not say which tensors belong to Linear layers, so the plan uses the
/// stored shapes and names: a tensor is quantized when its name ends in `.weight`, it is 2-D with a float dtype,
/// its module name (the name without `.weight`) matches an `include` pattern and no `skip` pattern, and it is not
/// already part of a 4-bit group. Patterns are globs over the full dotted module name: `*` matches any run of
/// characters (dots included), `?` one character.
public struct BnbQuantizationPlan: Sendable, Hashable {
    /// Modules never quantized by default: the output head, embeddings, norms, and common classifier heads.
    public static let defaultSkip = [
        "lm_head", "*.lm_head", "*embed*", "*norm*", "wte", "*.wte", "wpe", "*.wpe", "score", "*.score", "classifier",
        "*.classifier",
    ]

    /// Globs of module names to quantize (default: everything).
    public var include: [String]
    /// Globs of module names to leave unquantized (checked after `include`).
    public var skip: [String]

    /// Creates a plan.
    public init(include: [String] = ["*"], skip: [String] = defaultSkip) {
        self.include = include
        self.skip = skip
    }

    /// Whether the tensor `name` of `dtype` and `shape` is quantized under this plan.
    public func shouldQuantize(name: String, dtype: DType, shape: Shape) -> Bool {
        guard name.hasSuffix(".weight"), shape.rank == 2, dtype.isConvertibleFloat else { return false }
        guard !BnbQuantizedWeight.isCompanionName(name) else { return false }
        let module = String(name.dropLast(7))
        guard include.contains(where: { Self.glob($0, matches: module) }) else { return false }
        return !skip.contains(where: { Self.glob($0, matches: module) })
    }

    /// The names of the tensors to quantize, in checkpoint order.
    public func selectedNames(in tensors: [Tensor]) -> [String] {
        tensors.filter { shouldQuantize(name: $0.name, dtype: $0.dtype, shape: $0.shape) }.map(\.name)
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
