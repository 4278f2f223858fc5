public import NF4KitCore

/// The `quantization_config` object of a 4-bit checkpoint's `config.json`, as transformers writes it (spec 7).
///
/// The one place nf4kit builds it: `convert --to nf4|fp4` and `merge --to nf4|fp4` both write this object.
/// `llm_int8_skip_modules` follows transformers: `null` unless modules were left out on purpose, and then the list it
/// was given (see ``BnbQuantizationPlan/skipModules(in:)``), as in the golden `llama-tiny/nf4-dq/config.json`.
public struct BnbQuantizationConfig: Sendable, Hashable {
    /// NF4 or FP4 (`bnb_4bit_quant_type`).
    public var quantType: QuantType
    /// `bnb_4bit_use_double_quant`.
    public var doubleQuantization: Bool
    /// `bnb_4bit_compute_dtype` (does not change any stored byte).
    public var computeDType: DType
    /// `llm_int8_skip_modules`, or `nil` for JSON `null`.
    public var skipModules: [String]?

    /// Creates the settings of a `quantization_config`.
    public init(quantType: QuantType, doubleQuantization: Bool, computeDType: DType, skipModules: [String]? = nil) {
        self.quantType = quantType
        self.doubleQuantization = doubleQuantization
        self.computeDType = computeDType
        self.skipModules = skipModules
    }

    /// The 13 keys transformers 5.23 writes, in its (sorted) order.
    public var jsonObject: JSONObject {
        JSONObject([
            ("_load_in_4bit", .bool(true)),
            ("_load_in_8bit", .bool(false)),
            ("bnb_4bit_compute_dtype", .string(computeDType.torchName ?? "float32")),
            ("bnb_4bit_quant_storage", .string("uint8")),
            ("bnb_4bit_quant_type", .string(quantType.rawValue)),
            ("bnb_4bit_use_double_quant", .bool(doubleQuantization)),
            ("llm_int8_enable_fp32_cpu_offload", .bool(false)),
            ("llm_int8_has_fp16_weight", .bool(false)),
            ("llm_int8_skip_modules", skipModules.map { .array($0.map(JSONValue.string)) } ?? .null),
            ("llm_int8_threshold", .number("6.0")),
            ("load_in_4bit", .bool(true)),
            ("load_in_8bit", .bool(false)),
            ("quant_method", .string("bitsandbytes")),
        ])
    }
}

extension BnbQuantizationPlan {
    /// The `llm_int8_skip_modules` list for a checkpoint quantized with this plan, or `nil` (JSON `null`) when
    /// ``skip`` is empty.
    ///
    /// transformers replaces its automatic exclusions with this list (issue #45674), so `lm_head` goes first, then
    /// the module names of the 2-D weights the default rule would have quantized but ``skip`` keeps.
    public func skipModules(in tensors: [Tensor]) -> [String]? {
        guard !skip.isEmpty else { return nil }
        let skipped = tensors.filter { isSkippedLinear(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
            .map { String($0.name.dropLast(7)) }
        return ["lm_head"] + skipped.filter { $0 != "lm_head" }
    }
}
