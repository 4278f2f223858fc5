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
                    try member.bytes.withUnsafeBytes { raw in
                        try sink.put(name: member.name, dtype: member.dtype, shape: member.shape, bytes: raw)
                    }
                }
                return .copied
            }
            let result: Result = action == nil ? .copied : (action!.needsArithmetic ? .merged : .replaced)
            // Re-quantizing (`same`, nf4, fp4) follows PEFT: dequantize to the recorded dtype first, as
            // bitsandbytes' dequantize_4bit does; a plain output dequantizes straight to f32 (one rounding less).
            let requantize = form.plainDType == nil
            let values: UnsafeMutableBufferPointer<Float>
            if let replacement = action?.replacement {
                values = try scratch.load(replacement, threadCount: options.threadCount)
            } else {
                values = scratch.floats(group.tensor.elementCount)
                QuantizedWeightMerge.dequantize(
                    group.tensor, roundingThrough: requantize ? group.tensor.dtype : .f32, into: values)
            }
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

    private func quantize(
        _ values: UnsafeMutableBufferPointer<Float>, settings: QuantizationSettings, recordedDType: DType,
        sink: TensorSink, threadCount: Int
    ) throws {
        let quantizer = try BlockQuantizer(quantType: settings.quantType, blocksize: settings.blocksize)
        let quantized = try QuantizedWeightMerge.quantize(
            UnsafeBufferPointer(values), shape: action?.shape ?? entry.shape, with: quantizer,
            doubleQuantization: settings.doubleQuantization, recordedDType: recordedDType, name: entry.name,
            threads: threadCount)
        for tensor in try quantized.bnbTensors(weightName: entry.name) {
            try tensor.bytes.withUnsafeBytes { raw in
                try sink.put(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, bytes: raw)
            }
        }
    }

    private func merge(
        _ action: MergePlan.Action, values: UnsafeMutableBufferPointer<Float>, options: MergeOptions
    )
        throws
    {
        try LoRAMerger.apply(action, to: values, threadCount: options.threadCount)
    }

    /// The error for a merged value that is not finite in `dtype` (found after the fact: the check rides on the
    /// output conversion, after rounding, so a finite f32 that overflows an f16 output counts).
    private func nonFiniteError(_ values: UnsafeMutableBufferPointer<Float>, dtype: DType = .f32) -> CheckpointError {
        let index = values.firstIndex { !FloatConversion.isFinite($0, as: dtype) } ?? 0
        let value = values.isEmpty ? Float.nan : values[index]
        let what =
            value.isFinite
            ? "a value that is non-finite in \(dtype) (\(value) overflows it)" : "a non-finite value (\(value))"
        return CheckpointError(
            .nonFinite,
            "merged tensor '\(entry.name)' has \(what) at element \(index); the adapter seems broken (use --allow-nonfinite to write it anyway)",
            tensor: entry.name)
    }

    private func checkFinite(_ values: UnsafeMutableBufferPointer<Float>, options: MergeOptions) throws {
        if !options.allowNonFinite && LoRAMerger.firstNonFiniteIndex(UnsafeBufferPointer(values)) != nil {
            throw nonFiniteError(values)
        }
    }

    private func putNarrowed(
        _ values: UnsafeMutableBufferPointer<Float>, as output: Output, sink: TensorSink, scratch: MergeScratch,
        options: MergeOptions
    ) throws {
        let byteCount = output.dtype.byteCount(elementCount: values.count) ?? 0
        if case .planned(let writerSink) = sink {
            // The final file: narrow into a write-behind buffer and let the writer thread put it while the next
            // tensor is merged (the write is a third of a merge's time on this machine, docs/performance.md).
            let bytes = try scratch.writeBehindBuffer(byteCount)
            let finite = FloatConversion.narrow(
                UnsafeBufferPointer(values), to: output.dtype, into: bytes.buffer, threadCount: options.threadCount)
            if !finite && !options.allowNonFinite { throw nonFiniteError(values, dtype: output.dtype) }
            scratch.writeBehind(bytes) { raw in
                try writerSink.put(name: output.name, dtype: output.dtype, shape: output.shape, bytes: raw)
            }
            return
        }
        // A tensor computed on demand is narrowed straight into its storage.
        let direct = sink.memory
        precondition(direct == nil || direct!.count == byteCount, "tensor '\(output.name)': storage of another size")
        let bytes = direct ?? scratch.bytes(byteCount)
        let finite = FloatConversion.narrow(
            UnsafeBufferPointer(values), to: output.dtype, into: bytes, threadCount: options.threadCount)
        if !finite && !options.allowNonFinite { throw nonFiniteError(values, dtype: output.dtype) }
        if direct != nil { return }
        try sink.put(name: output.name, dtype: output.dtype, shape: output.shape, bytes: UnsafeRawBufferPointer(bytes))
    }

    private func putConverted(_ tensor: Tensor, as output: Output, sink: TensorSink) throws {
        if tensor.dtype == output.dtype {
            try tensor.bytes.withUnsafeBytes { raw in
                try sink.put(name: output.name, dtype: output.dtype, shape: output.shape, bytes: raw)
            }
            return
        }
        if let direct = sink.memory {
            // A tensor computed on demand is converted straight into its storage.
            tensor.bytes.withUnsafeBytes { raw in
                FloatConversion.convert(
                    raw, from: tensor.dtype, to: output.dtype, count: tensor.shape.elementCount, into: direct)
            }
            return
        }
        let converted = tensor.bytes.withUnsafeBytes { raw in
            FloatConversion.convert(raw, from: tensor.dtype, to: output.dtype, count: tensor.shape.elementCount)
        }
        try converted.withUnsafeBytes { raw in
            try sink.put(name: output.name, dtype: output.dtype, shape: output.shape, bytes: raw)
        }
    }
}
