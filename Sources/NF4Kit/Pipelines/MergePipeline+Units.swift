import NF4KitCore
import NF4KitFormats
import NF4KitMerge
import NF4KitQuant

/// bitsandbytes 4-bit settings of a base checkpoint or of the requested output.
struct QuantizationSettings: Sendable {
    var quantType: String
    var blocksize: Int
    var doubleQuantization: Bool
    /// `bnb_4bit_compute_dtype`, and the dtype recorded in each weight's quant state.
    var computeDType: DType
    /// The `quantization_config` object transformers writes into config.json.
    var configJSON: JSONObject {
        JSONObject([
            ("_load_in_4bit", .bool(true)), ("_load_in_8bit", .bool(false)),
            ("bnb_4bit_compute_dtype", .string(computeDType.torchName ?? "float32")),
            ("bnb_4bit_quant_storage", .string("uint8")), ("bnb_4bit_quant_type", .string(quantType)),
            ("bnb_4bit_use_double_quant", .bool(doubleQuantization)), ("llm_int8_enable_fp32_cpu_offload", .bool(false)),
            ("llm_int8_has_fp16_weight", .bool(false)), ("llm_int8_skip_modules", .null),
            ("llm_int8_threshold", .number("6.0")), ("load_in_4bit", .bool(true)), ("load_in_8bit", .bool(false)),
            ("quant_method", .string("bitsandbytes")),
        ])
    }
}

/// The base checkpoint as logical tensors: one entry per float tensor, a 4-bit weight and its companion tensors
/// folded into one entry with the shape recorded in its quant state.
struct BaseModel {
    enum Storage {
        case plain(Tensor)
    }
    struct Entry {
        var name: String
        var shape: Shape
        var storage: Storage
    }
    var entries: [Entry]
    var quantization: QuantizationSettings?

    var logicalTensors: [(name: String, shape: Shape)] { entries.map { ($0.name, $0.shape) } }

    init(source: ModelSource) throws(CheckpointError) {
        let tensors = source.checkpoint.tensors
        if let state = tensors.first(where: { $0.name.contains(".quant_state.bitsandbytes__") }) {
            throw CheckpointError(
                .unsupported, "the base is a bitsandbytes 4-bit checkpoint ('\(state.name)'); 4-bit bases are not supported by this build yet",
                file: source.path, tensor: state.name)
        }
        entries = tensors.map { Entry(name: $0.name, shape: $0.shape, storage: .plain($0)) }
        quantization = nil
    }
}

/// The output form after resolving `--to same` against the base.
struct OutputForm {
    /// Plain dtype for every float tensor (`--to f16|bf16|f32`), or `nil` to keep each tensor's dtype.
    var plainDType: DType?
    /// 4-bit settings for the quantized weights, or `nil` for a plain output.
    var quantization: QuantizationSettings?

    init(options: MergeOptions, base: BaseModel) throws(CheckpointError) {
        switch options.target {
        case .same:
            plainDType = nil
            quantization = base.quantization
        case .f16, .bf16, .f32:
            plainDType = options.target.plainDType
            quantization = nil
        case .nf4, .fp4:
            throw CheckpointError(.unsupported, "--to \(options.target.rawValue) is not supported by this build yet")
        }
    }
}

/// One base entry and the output tensor(s) it becomes.
struct OutputUnit {
    enum Result { case merged, replaced, copied }
    struct Output {
        var name: String
        var dtype: DType
        var shape: Shape
    }

    let entry: BaseModel.Entry
    let action: MergePlan.Action?
    let outputs: [Output]

    init(entry: BaseModel.Entry, action: MergePlan.Action?, form: OutputForm) throws(CheckpointError) {
        self.entry = entry
        self.action = action
        let shape = action?.shape ?? entry.shape
        switch entry.storage {
        case .plain(let tensor):
            if let action, action.needsArithmetic, !tensor.dtype.isConvertibleFloat {
                throw CheckpointError(.unsupportedDType, "base tensor '\(tensor.name)' is \(tensor.dtype); only float tensors can take a LoRA update", tensor: tensor.name)
            }
            let dtype = tensor.dtype.isConvertibleFloat ? (form.plainDType ?? tensor.dtype) : tensor.dtype
            outputs = [Output(name: entry.name, dtype: dtype, shape: shape)]
        }
    }

    /// Computes and writes this unit's output tensors.
    func produce(form: OutputForm, options: MergeOptions, writer: SafetensorsWriter) throws -> Result {
        let output = outputs[0]
        switch entry.storage {
        case .plain(let tensor):
            guard let action else {
                try writeConverted(tensor, as: output, writer: writer)
                return .copied
            }
            let source = action.replacement ?? tensor
            guard action.needsArithmetic else {
                try writeConverted(source, as: output, writer: writer)
                return .replaced
            }
            var values = try LoRAMerger.floats(source)
            try merge(action, values: &values, options: options)
            var bytes = [UInt8](repeating: 0, count: output.dtype.byteCount(elementCount: values.count) ?? 0)
            values.withUnsafeBufferPointer { source in
                bytes.withUnsafeMutableBytes { FloatConversion.narrow(source, to: output.dtype, into: $0) }
            }
            try bytes.withUnsafeBytes { raw in try writer.write(output.name, bytes: raw) }
            return .merged
        }
    }

    private func merge(_ action: MergePlan.Action, values: inout [Float], options: MergeOptions) throws {
        try values.withUnsafeMutableBufferPointer { buffer in
            try LoRAMerger.apply(action, to: buffer, threadCount: options.threadCount)
            if !options.allowNonFinite, let index = LoRAMerger.firstNonFiniteIndex(UnsafeBufferPointer(buffer)) {
                throw CheckpointError(
                    .nonFinite,
                    "merged tensor '\(action.name)' has a non-finite value (\(buffer[index])) at element \(index); the adapter seems broken (use --allow-nonfinite to write it anyway)",
                    tensor: action.name)
            }
        }
    }

    private func writeConverted(_ tensor: Tensor, as output: Output, writer: SafetensorsWriter) throws {
        if tensor.dtype == output.dtype {
            try writer.write(output.name, bytes: tensor.bytes)
            return
        }
        let converted = tensor.bytes.withUnsafeBytes { raw in
            FloatConversion.convert(raw, from: tensor.dtype, to: output.dtype, count: tensor.shape.elementCount)
        }
        try converted.withUnsafeBytes { raw in try writer.write(output.name, bytes: raw) }
    }
}
