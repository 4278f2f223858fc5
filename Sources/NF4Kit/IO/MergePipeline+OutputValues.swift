import NF4KitCore
import NF4KitMerge
import NF4KitQuant

// The buffer side of an output unit: its f32 values are the merge scratch's, and its outputs go to the sink as raw
// bytes (narrowed, converted or quantized).
extension OutputUnit {
    /// The f32 values a quantized base weight starts from: the adapter's replacement, or the weight dequantized
    /// (rounded through its recorded dtype when it is quantized again, as PEFT does).
    func startingValues(
        _ weight: QuantizedTensor, requantize: Bool, scratch: MergeScratch, options: MergeOptions
    ) throws -> UnsafeMutableBufferPointer<Float> {
        if let replacement = action?.replacement {
            return try scratch.load(replacement, threadCount: options.threadCount)
        }
        let values = scratch.floats(weight.elementCount)
        QuantizedWeightMerge.dequantize(weight, roundingThrough: requantize ? weight.dtype : .f32, into: values)
        return values
    }

    func quantize(
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

    func merge(
        _ action: MergePlan.Action, values: UnsafeMutableBufferPointer<Float>, options: MergeOptions
    )
        throws
    {
        try LoRAMerger.apply(action, to: values, threadCount: options.threadCount)
    }

    /// The error for a merged value that is not finite in `dtype` (found after the fact: the check rides on the
    /// output conversion, after rounding, so a finite f32 that overflows an f16 output counts).
    func nonFiniteError(_ values: UnsafeMutableBufferPointer<Float>, dtype: DType = .f32) -> CheckpointError {
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

    func checkFinite(_ values: UnsafeMutableBufferPointer<Float>, options: MergeOptions) throws {
        if !options.allowNonFinite && LoRAMerger.firstNonFiniteIndex(UnsafeBufferPointer(values)) != nil {
            throw nonFiniteError(values)
        }
    }

    func putNarrowed(
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

    func putConverted(_ tensor: Tensor, as output: Output, sink: TensorSink) throws {
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

extension TensorSink {
    /// Puts a tensor's bytes (a view of the base or of memory we own).
    func put(name: String, dtype: DType, shape: Shape, bytes: TensorBytes) throws {
        try bytes.withUnsafeBytes { raw in try put(name: name, dtype: dtype, shape: shape, bytes: raw) }
    }
}
