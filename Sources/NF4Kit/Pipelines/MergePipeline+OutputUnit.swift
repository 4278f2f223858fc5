import NF4KitCore
import NF4KitFormats
import NF4KitMerge
import NF4KitQuant

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
    /// The outputs, when their sizes are known before computing (`nil` for a freshly quantized weight: the
    /// quant-state JSON's length depends on the computed offset, so such units are computed first and spilled).
    let outputs: [Output]?

    init(entry: BaseModel.Entry, action: MergePlan.Action?, form: OutputForm) throws(CheckpointError) {
        self.entry = entry
        self.action = action
        let shape = action?.shape ?? entry.shape
        switch entry.storage {
        case .plain(let tensor):
            if let action, action.needsArithmetic, !tensor.dtype.isConvertibleFloat {
                throw CheckpointError(
                    .unsupportedDType,
                    "base tensor '\(tensor.name)' is \(tensor.dtype); only float tensors can take a LoRA update",
                    tensor: tensor.name)
            }
            if form.quantization != nil,
                form.selection.shouldQuantize(name: entry.name, dtype: tensor.dtype, shape: shape)
            {
                outputs = nil
            } else {
                let dtype = tensor.dtype.isConvertibleFloat ? (form.plainDType ?? tensor.dtype) : tensor.dtype
                outputs = [Output(name: entry.name, dtype: dtype, shape: shape)]
            }
        case .quantized(let group, let members):
            if let plain = form.plainDType {
                outputs = [Output(name: entry.name, dtype: plain, shape: shape)]
            } else if action == nil && (form.quantization.map { $0.matches(group.tensor) } ?? true) {
                outputs = members.map { Output(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
            } else {
                outputs = nil
            }
        }
    }

    /// Lets go of the base tensor's resident pages once its output is written (see `TensorBytes.releasePages`).
    func releaseInputPages() {
        switch entry.storage {
        case .plain(let tensor): tensor.bytes.releasePages()
        case .quantized(_, let members): for member in members { member.bytes.releasePages() }
        }
    }

    /// Bytes of the base tensor(s) this unit reads (for progress).
    var inputByteCount: Int {
        switch entry.storage {
        case .plain(let tensor): tensor.bytes.count
        case .quantized(_, let members): members.reduce(0) { $0 + $1.bytes.count }
        }
    }

    /// Computes this unit's output tensors and hands them to `sink`, using `scratch` for the f32 values.
    func produce(form: OutputForm, options: MergeOptions, sink: TensorSink, scratch: MergeScratch) throws -> Result {
        switch entry.storage {
        case .plain(let tensor):
            let source = action?.replacement ?? tensor
            let result: Result = action == nil ? .copied : (action!.needsArithmetic ? .merged : .replaced)
            guard let outputs else {
                // A plain weight quantized by --to nf4|fp4, after merging if needed.
                let values = try scratch.load(source, threadCount: options.threadCount)
                if let action, action.needsArithmetic {
                    try merge(action, values: values, options: options)
                    try checkFinite(values, options: options)
                }
                try quantize(
                    values, settings: form.quantization!,
                    recordedDType: BlockQuantizer.recordedDType(forInput: tensor.dtype), sink: sink,
                    threadCount: options.threadCount)
                return result
            }
            let output = outputs[0]
            guard let action, action.needsArithmetic else {
                try putConverted(source, as: output, sink: sink)
                return result
            }
            let values = try scratch.load(source, threadCount: options.threadCount)
            try merge(action, values: values, options: options)
            try putNarrowed(values, as: output, sink: sink, scratch: scratch, options: options)
            return .merged

        case .quantized(let group, let members):
            if let outputs, outputs.count == members.count, form.plainDType == nil {
                for member in members {
                    try sink.put(name: member.name, dtype: member.dtype, shape: member.shape, bytes: member.bytes)
                }
                return .copied
            }
            let result: Result = action == nil ? .copied : (action!.needsArithmetic ? .merged : .replaced)
            // Re-quantizing (`same`, nf4, fp4) follows PEFT: dequantize to the recorded dtype first, as
            // bitsandbytes' dequantize_4bit does; a plain output dequantizes straight to f32 (one rounding less).
            let requantize = form.plainDType == nil
            let values = try startingValues(group.tensor, requantize: requantize, scratch: scratch, options: options)
            if let action, action.needsArithmetic {
                try merge(action, values: values, options: options)
                if form.plainDType == nil { try checkFinite(values, options: options) }
            }
            if let plain = form.plainDType {
                let output = Output(name: entry.name, dtype: plain, shape: entry.shape)
                try putNarrowed(values, as: output, sink: sink, scratch: scratch, options: options)
            } else if let settings = form.quantization {
                // --to nf4|fp4: quantize like a fresh conversion, recording the weight's original dtype.
                try quantize(
                    values, settings: settings, recordedDType: group.tensor.dtype, sink: sink,
                    threadCount: options.threadCount)
            } else {
                // --to same: PEFT's merge_and_unload re-quantizes the f32 sum, so bitsandbytes records float32.
                let settings = QuantizationSettings(
                    quantType: group.tensor.quantType, blocksize: group.tensor.blocksize,
                    doubleQuantization: group.tensor.isDoubleQuantized, computeDType: .f32)
                try quantize(
                    values, settings: settings, recordedDType: action == nil ? group.tensor.dtype : .f32, sink: sink,
                    threadCount: options.threadCount)
            }
            return result
        }
    }
}
