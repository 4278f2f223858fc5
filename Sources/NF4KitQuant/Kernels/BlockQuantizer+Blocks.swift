public import NF4KitCore

// The entry points of BlockQuantizer over raw buffers: whole tensors or block ranges, one call per tensor
// (STYLE.md section 2), plus the tensor and absmax buffers they fill.
extension BlockQuantizer {
    /// Phase 1: quantizes blocks `blocks` of a whole tensor.
    ///
    /// Reads the blocks' values from `input` and writes their packed bytes into `packed` (the whole tensor's
    /// buffer, `packedByteCount(elementCount:)` bytes) and their absmax into `absmax` (one float per block of the
    /// tensor). Calls on disjoint ranges touch disjoint bytes and may run concurrently. Allocation-free apart from
    /// a stack scratch buffer of `blocksize` floats.
    ///
    /// Preconditions (caller's misuse, not file data): `dtype` is F16, BF16, F32 or F64, `input` holds
    /// `elementCount` values, the buffers are large enough, `blocks` lies within the tensor.
    /// - Complexity: O(blocks.count × blocksize).
    public func quantizeBlocks(
        _ blocks: Range<Int>, of input: UnsafeRawBufferPointer, dtype: DType, elementCount: Int,
        packedInto packed: UnsafeMutableRawBufferPointer, absmaxInto absmax: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(dtype.isConvertibleFloat, "quantizeBlocks: \(dtype) is not a float type")
        precondition(input.count >= elementCount * dtype.bitWidth / 8, "quantizeBlocks: input too short")
        precondition(
            packed.count >= Self.packedByteCount(elementCount: elementCount), "quantizeBlocks: packed buffer too small")
        precondition(
            blocks.lowerBound >= 0 && blocks.upperBound <= blockCount(elementCount: elementCount),
            "quantizeBlocks: blocks out of range")
        precondition(absmax.count >= blocks.upperBound, "quantizeBlocks: absmax buffer too small")
        QuantizeKernel.run(
            blocks: blocks, input: input, dtype: dtype, elementCount: elementCount, blocksize: blocksize, rule: rule,
            profile: profile, native: kernel == .automatic, packed: packed, absmax: absmax)
    }

    /// The absmax ``quantizeBlocks(_:of:dtype:elementCount:packedInto:absmaxInto:)`` would write, without coding.
    ///
    /// For planning: with double quantization the quant-state JSON (whose length a safetensors header needs)
    /// contains the offset, the mean of every absmax. About a quarter of the cost of quantizing.
    public func blockAbsmax(
        _ blocks: Range<Int>, of input: UnsafeRawBufferPointer, dtype: DType, elementCount: Int,
        into absmax: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(dtype.isConvertibleFloat, "blockAbsmax: \(dtype) is not a float type")
        precondition(input.count >= elementCount * dtype.bitWidth / 8, "blockAbsmax: input too short")
        precondition(
            blocks.lowerBound >= 0 && blocks.upperBound <= blockCount(elementCount: elementCount),
            "blockAbsmax: blocks out of range")
        precondition(absmax.count >= blocks.upperBound, "blockAbsmax: absmax buffer too small")
        QuantizeKernel.absmaxOnly(
            blocks: blocks, input: input, dtype: dtype, elementCount: elementCount, blocksize: blocksize,
            profile: profile,
            absmax: absmax)
    }

    /// The quant state a tensor of `shape` and `dtype` will get, computed from its raw values (planning pass).
    ///
    /// Equal to `BnbQuantState(quantize(...))` (tested), at the cost of one absmax pass.
    /// - Throws: as ``quantize(_:dtype:shape:doubleQuantization:name:)``.
    public func plannedQuantState(
        _ input: UnsafeRawBufferPointer, dtype: DType, shape: Shape, doubleQuantization: Bool, name: String? = nil,
        offsetThreadCount: Int = 1
    ) throws(CheckpointError) -> BnbQuantState {
        let n = try checkedInput(byteCount: input.count, dtype: dtype, shape: shape, name: name)
        var nested: BnbQuantState.Nested? = nil
        if doubleQuantization {
            let blocks = blockCount(elementCount: n)
            var absmax = [Float](repeating: 0, count: blocks)
            absmax.withUnsafeMutableBufferPointer {
                blockAbsmax(0..<blocks, of: input, dtype: dtype, elementCount: n, into: $0)
            }
            let offset = absmax.withUnsafeBufferPointer {
                DoubleQuantization.offset(of: $0, threadCount: offsetThreadCount)
            }
            try Self.checkOffset(offset, name: name)
            nested = .init(blocksize: DoubleQuantization.nestedBlocksize, offset: offset)
        }
        return BnbQuantState(
            quantType: quantType, blocksize: blocksize, dtype: Self.recordedDType(forInput: dtype), shape: shape,
            nested: nested)
    }

    /// Phase 2: wraps phase 1's output into a ``QuantizedTensor``, double-quantizing the absmax if asked.
    ///
    /// - Parameters:
    ///   - dtype: the input dtype (recorded as the quant-state `"dtype"`; f64 is recorded as f32).
    ///   - packed: the packed codes of the whole tensor.
    ///   - absmax: the first-level absmax of every block.
    ///   - offsetThreadCount: PyTorch's intra-op thread count to mimic for the mean (1 matches the golden files).
    public func finish(
        shape: Shape, dtype: DType, packed: TensorBytes, absmax: UnsafeBufferPointer<Float>, doubleQuantization: Bool,
        offsetThreadCount: Int = 1, name: String? = nil
    ) throws(CheckpointError) -> QuantizedTensor {
        let statistics: QuantizedTensor.Statistics
        if doubleQuantization {
            let offset = DoubleQuantization.offset(of: absmax, threadCount: offsetThreadCount)
            let nestedCount = DoubleQuantization.nestedBlockCount(blockCount: absmax.count)
            var nested = [Float](repeating: 0, count: nestedCount)
            let codes = MappedRegion(filling: absmax.count, description: "absmax codes") {
                (raw: UnsafeMutableRawBufferPointer) in
                nested.withUnsafeMutableBufferPointer { nestedBuffer in
                    DoubleQuantization.quantize(
                        absmax: absmax, offset: offset, profile: profile,
                        codes: raw.bindMemory(to: UInt8.self), nestedAbsmax: nestedBuffer)
                }
            }
            statistics = .double(
                .init(codes: codes.all, nestedAbsmax: littleEndianBytes(nested), offset: offset))
        } else {
            statistics = .plain(absmax: littleEndianBytes(Array(absmax)))
        }
        return try QuantizedTensor(
            quantType: quantType, blocksize: blocksize, shape: shape, dtype: Self.recordedDType(forInput: dtype),
            packed: packed, statistics: statistics)
    }

    /// Quantizes a whole tensor; phase 1 runs on up to `threads` threads over disjoint block ranges, so the bytes
    /// do not depend on `threads`.
    ///
    /// - Parameters:
    ///   - input: `shape.elementCount` little-endian values of `dtype`, row-major.
    ///   - dtype: F16, BF16, F32 or F64 (F64 is rounded to F32 first).
    ///   - shape: the logical shape (recorded in the quant state).
    ///   - doubleQuantization: store the absmax as 8-bit codes (`bnb_4bit_use_double_quant`).
    ///   - threads: 1 (default) quantizes on the calling thread.
    /// - Throws: ``CheckpointError`` `.unsupportedDType` for non-float input, `.shapeMismatch` when the byte count
    ///   does not match the shape, `.invalidArgument` for an empty tensor.
    /// - Complexity: O(n).
    public func quantize(
        _ input: UnsafeRawBufferPointer, dtype: DType, shape: Shape, doubleQuantization: Bool, name: String? = nil,
        threads: Int = 1
    ) throws(CheckpointError) -> QuantizedTensor {
        let n = try checkedInput(byteCount: input.count, dtype: dtype, shape: shape, name: name)
        let blocks = blockCount(elementCount: n)
        var absmax = [Float](repeating: 0, count: blocks)
        let packed = MappedRegion(filling: Self.packedByteCount(elementCount: n), description: "packed codes") {
            (raw: UnsafeMutableRawBufferPointer) in
            absmax.withUnsafeMutableBufferPointer { absmaxBuffer in
                QuantizeKernel.runParallel(
                    blocks: blocks, threads: threads, input: input, dtype: dtype, elementCount: n, blocksize: blocksize,
                    rule: rule, profile: profile, native: kernel == .automatic, packed: raw, absmax: absmaxBuffer)
            }
        }
        return try absmax.withUnsafeBufferPointer { (buffer) throws(CheckpointError) in
            try finish(
                shape: shape, dtype: dtype, packed: packed.all, absmax: buffer, doubleQuantization: doubleQuantization,
                name: name)
        }
    }

    /// ``plannedQuantState(_:dtype:shape:doubleQuantization:name:offsetThreadCount:)`` over a tensor's bytes.
    func plannedQuantState(
        _ bytes: TensorBytes, dtype: DType, shape: Shape, doubleQuantization: Bool, name: String?,
        offsetThreadCount: Int
    ) throws(CheckpointError) -> BnbQuantState {
        try bytes.withUnsafeBytes { (raw) throws(CheckpointError) in
            try plannedQuantState(
                raw, dtype: dtype, shape: shape, doubleQuantization: doubleQuantization, name: name,
                offsetThreadCount: offsetThreadCount)
        }
    }

    /// ``quantize(_:dtype:shape:doubleQuantization:name:threads:)`` over a tensor's bytes.
    func quantize(
        _ bytes: TensorBytes, dtype: DType, shape: Shape, doubleQuantization: Bool, name: String?, threads: Int
    ) throws(CheckpointError) -> QuantizedTensor {
        try bytes.withUnsafeBytes { (raw) throws(CheckpointError) in
            try quantize(
                raw, dtype: dtype, shape: shape, doubleQuantization: doubleQuantization, name: name, threads: threads)
        }
    }
}

/// Float32 values as an owned little-endian byte view.
func littleEndianBytes(_ values: [Float]) -> TensorBytes {
    MappedRegion(filling: values.count * 4, description: "float32 values") { (raw: UnsafeMutableRawBufferPointer) in
        for (i, v) in values.enumerated() {
            raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
        }
    }.all
}
