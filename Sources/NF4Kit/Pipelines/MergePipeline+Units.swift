import Dispatch
import Synchronization
import NF4KitCore
import NF4KitFormats
import NF4KitMerge
import NF4KitQuant

/// bitsandbytes 4-bit settings of a base checkpoint or of the requested output.
struct QuantizationSettings: Sendable, Hashable {
    var quantType: QuantType
    var blocksize: Int
    var doubleQuantization: Bool
    /// `bnb_4bit_compute_dtype` for config.json.
    var computeDType: DType

    /// The `quantization_config` object transformers 5 writes into config.json (merge quantizes with the default
    /// plan, so `llm_int8_skip_modules` is `null`).
    var configJSON: JSONObject {
        BnbQuantizationConfig(
            quantType: quantType, doubleQuantization: doubleQuantization, computeDType: computeDType, skipModules: nil
        ).jsonObject
    }

    /// Whether `tensor` is stored with exactly these settings.
    func matches(_ tensor: QuantizedTensor) -> Bool {
        tensor.quantType == quantType && tensor.blocksize == blocksize && tensor.isDoubleQuantized == doubleQuantization
    }
}

/// The base checkpoint as logical tensors: one entry per tensor, a 4-bit weight and its companion tensors folded
/// into one entry with the shape recorded in its quant state.
struct BaseModel {
    enum Storage {
        case plain(Tensor)
        /// A bitsandbytes weight and all its member tensors in checkpoint order.
        case quantized(BnbQuantizedWeight, members: [Tensor])
    }
    struct Entry {
        var name: String
        var shape: Shape
        var storage: Storage
    }
    var entries: [Entry]
    /// The base's 4-bit settings (from its first quantized weight and config.json), `nil` for a plain base.
    var quantization: QuantizationSettings?

    var logicalTensors: [(name: String, shape: Shape)] { entries.map { ($0.name, $0.shape) } }

    init(source: ModelSource) throws(CheckpointError) {
        let tensors = source.checkpoint.tensors
        let groups = try BnbQuantizedWeight.groups(in: tensors)
        guard let first = groups.first else {
            entries = tensors.map { Entry(name: $0.name, shape: $0.shape, storage: .plain($0)) }
            quantization = nil
            return
        }
        let byName = source.checkpoint.tensorsByName
        var byWeight: [String: BnbQuantizedWeight] = [:]
        var companions = Set<String>()
        for group in groups {
            byWeight[group.weightName] = group
            companions.formUnion(group.memberNames.filter { $0 != group.weightName })
        }
        var entries: [Entry] = []
        for tensor in tensors {
            if let group = byWeight[tensor.name] {
                entries.append(
                    Entry(
                        name: tensor.name, shape: group.tensor.shape,
                        storage: .quantized(group, members: group.memberNames.map { byName[$0]! })))
            } else if !companions.contains(tensor.name) {
                entries.append(Entry(name: tensor.name, shape: tensor.shape, storage: .plain(tensor)))
            }
        }
        self.entries = entries
        let computeName = source.config?["quantization_config"]?["bnb_4bit_compute_dtype"]?.stringValue
        quantization = QuantizationSettings(
            quantType: first.tensor.quantType, blocksize: first.tensor.blocksize,
            doubleQuantization: first.tensor.isDoubleQuantized,
            computeDType: computeName.flatMap { DType(torchName: $0) } ?? first.tensor.dtype)
    }
}

/// The output form after resolving `--to` against the base.
struct OutputForm {
    var target: MergeOptions.Target
    /// Plain dtype for every float tensor (`--to f16|bf16|f32`), or `nil` to keep each tensor's dtype.
    var plainDType: DType?
    /// Settings for weights quantized by `--to nf4|fp4`, or `nil`.
    var quantization: QuantizationSettings?
    /// Which plain weights `--to nf4|fp4` quantizes (transformers' choice: Linear weights, not head/embeddings).
    var selection = BnbQuantizationPlan()

    init(options: MergeOptions, base: BaseModel, baseDType: DType) throws(CheckpointError) {
        target = options.target
        plainDType = options.target.plainDType
        switch options.target {
        case .same, .f16, .bf16, .f32:
            quantization = nil
            if options.target == .same, base.quantization == nil,
                options.blocksize != nil || !options.doubleQuantization
            {
                throw CheckpointError(
                    .invalidArgument,
                    "--blocksize and --no-double-quant need a 4-bit output; the base is not 4-bit (use --to nf4|fp4)")
            }
        case .nf4, .fp4:
            let blocksize = options.blocksize ?? 64
            guard BlockQuantizer.supportedBlocksizes.contains(blocksize) else {
                throw CheckpointError(
                    .invalidArgument, "--blocksize \(blocksize) is not one of \(BlockQuantizer.supportedBlocksizes)")
            }
            quantization = QuantizationSettings(
                quantType: options.target == .nf4 ? .nf4 : .fp4, blocksize: blocksize,
                doubleQuantization: options.doubleQuantization,
                computeDType: base.quantization?.computeDType
                    ?? (baseDType == .bf16 || baseDType == .f16 ? baseDType : .f32))
        }
    }
}

/// Receives output tensors: the planned file writer, or the spill file of freshly quantized tensors.
protocol TensorSink {
    func put(name: String, dtype: DType, shape: Shape, bytes: UnsafeRawBufferPointer) throws
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
    func produce(form: OutputForm, options: MergeOptions, sink: any TensorSink, scratch: MergeScratch) throws -> Result
    {
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
                dequantize(group.tensor, through: requantize ? group.tensor.dtype : .f32, into: values)
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

    private func dequantize(
        _ tensor: QuantizedTensor, through dtype: DType, into values: UnsafeMutableBufferPointer<Float>
    ) {
        let absmax = tensor.absmaxValues()
        if dtype == .f32 {
            absmax.withUnsafeBufferPointer {
                tensor.dequantizeBlocks(
                    0..<tensor.blockCount, absmax: $0, as: .f32, into: UnsafeMutableRawBufferPointer(values))
            }
        } else {
            let rounded = tensor.dequantized(as: dtype)
            rounded.withUnsafeBytes { raw in FloatConversion.widen(raw, from: dtype, into: values) }
        }
    }

    private func quantize(
        _ values: UnsafeMutableBufferPointer<Float>, settings: QuantizationSettings, recordedDType: DType,
        sink: any TensorSink, threadCount: Int
    ) throws {
        let quantizer = try BlockQuantizer(quantType: settings.quantType, blocksize: settings.blocksize)
        let count = values.count
        guard count > 0 else {
            throw CheckpointError(
                .invalidArgument, "cannot quantize the empty tensor '\(entry.name)'", tensor: entry.name)
        }
        let blocks = quantizer.blockCount(elementCount: count)
        var absmax = [Float](repeating: 0, count: blocks)
        // Phase 1 on disjoint block ranges (parallel, same bytes for any thread count), phase 2 once.
        let packed = absmax.withUnsafeMutableBufferPointer { absmaxBuffer in
            MappedRegion(filling: BlockQuantizer.packedByteCount(elementCount: count), description: "packed codes") {
                raw in
                let job = QuantizeJob(input: UnsafeRawBufferPointer(values), packed: raw, absmax: absmaxBuffer)
                let parts = min(max(threadCount, 1), max(1, blocks / 4096))
                let body: @Sendable (Int) -> Void = { part in
                    let range = (blocks * part / parts)..<(blocks * (part + 1) / parts)
                    quantizer.quantizeBlocks(
                        range, of: job.input, dtype: .f32, elementCount: count, packedInto: job.packed,
                        absmaxInto: job.absmax)
                }
                if parts > 1 { DispatchQueue.concurrentPerform(iterations: parts, execute: body) } else { body(0) }
            }
        }
        var quantized = try absmax.withUnsafeBufferPointer { buffer in
            try quantizer.finish(
                shape: entry.shape, dtype: .f32, packed: packed.all, absmax: buffer,
                doubleQuantization: settings.doubleQuantization)
        }
        quantized.dtype = recordedDType
        for tensor in try quantized.bnbTensors(weightName: entry.name) {
            try tensor.bytes.withUnsafeBytes { raw in
                try sink.put(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, bytes: raw)
            }
        }
    }

    private func merge(_ action: MergePlan.Action, values: UnsafeMutableBufferPointer<Float>, options: MergeOptions)
        throws
    {
        try LoRAMerger.apply(action, to: values, threadCount: options.threadCount, arithmetic: options.arithmetic)
    }

    /// The error for a non-finite merged value (found after the fact: the check rides on the output conversion).
    private func nonFiniteError(_ values: UnsafeMutableBufferPointer<Float>) -> CheckpointError {
        let index = LoRAMerger.firstNonFiniteIndex(UnsafeBufferPointer(values)) ?? 0
        return CheckpointError(
            .nonFinite,
            "merged tensor '\(entry.name)' has a non-finite value (\(values[index])) at element \(index); the adapter seems broken (use --allow-nonfinite to write it anyway)",
            tensor: entry.name)
    }

    private func checkFinite(_ values: UnsafeMutableBufferPointer<Float>, options: MergeOptions) throws {
        if !options.allowNonFinite && LoRAMerger.firstNonFiniteIndex(UnsafeBufferPointer(values)) != nil {
            throw nonFiniteError(values)
        }
    }

    private func putNarrowed(
        _ values: UnsafeMutableBufferPointer<Float>, as output: Output, sink: any TensorSink, scratch: MergeScratch,
        options: MergeOptions
    ) throws {
        let byteCount = output.dtype.byteCount(elementCount: values.count) ?? 0
        if let writerSink = sink as? WriterSink {
            // The final file: narrow into a write-behind buffer and let the writer thread put it while the next
            // tensor is merged (the write is a third of a merge's time on this machine, docs/performance.md).
            let bytes = try scratch.writeBehindBuffer(byteCount)
            let finite = HalfConversion.narrow(
                UnsafeBufferPointer(values), to: output.dtype, into: bytes.buffer, threadCount: options.threadCount)
            if !finite && !options.allowNonFinite { throw nonFiniteError(values) }
            scratch.writeBehind(bytes) { raw in
                try writerSink.put(name: output.name, dtype: output.dtype, shape: output.shape, bytes: raw)
            }
            return
        }
        let bytes = scratch.bytes(byteCount)
        let finite = HalfConversion.narrow(
            UnsafeBufferPointer(values), to: output.dtype, into: bytes, threadCount: options.threadCount)
        if !finite && !options.allowNonFinite { throw nonFiniteError(values) }
        try sink.put(name: output.name, dtype: output.dtype, shape: output.shape, bytes: UnsafeRawBufferPointer(bytes))
    }

    private func putConverted(_ tensor: Tensor, as output: Output, sink: any TensorSink) throws {
        if tensor.dtype == output.dtype {
            try tensor.bytes.withUnsafeBytes { raw in
                try sink.put(name: output.name, dtype: output.dtype, shape: output.shape, bytes: raw)
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

/// Writes each tensor into the planned output.
struct WriterSink: TensorSink {
    let output: CheckpointOutput
    func put(name: String, dtype: DType, shape: Shape, bytes: UnsafeRawBufferPointer) throws {
        try output.write(name, bytes: bytes)
    }
}

/// A scratch file for freshly quantized tensors, appended in order and copied into the planned output later.
/// It is an unfinished ``OutputFile``, so it is removed when the pipeline ends, whatever happens.
final class SpillSink: TensorSink {
    struct Record {
        var name: String
        var dtype: DType
        var shape: Shape
        var offset: Int
        var byteCount: Int
    }
    private let file: OutputFile
    private(set) var records: [Record] = []
    private var end = 0

    init(path: String, inputs: [String]) throws(CheckpointError) {
        file = try OutputFile(path: path, overwrite: true, inputs: inputs)
    }

    func put(name: String, dtype: DType, shape: Shape, bytes: UnsafeRawBufferPointer) throws {
        try file.write(bytes, at: Int64(end))
        records.append(Record(name: name, dtype: dtype, shape: shape, offset: end, byteCount: bytes.count))
        end += bytes.count
    }

    /// Maps what was written, for copying into the final files.
    func mapped() throws(CheckpointError) -> MappedRegion? {
        end == 0 ? nil : try MappedRegion(mapping: file.partialPath)
    }
}

/// Reusable buffers for one tensor's f32 values and its output bytes, so the pipeline does not allocate (and the
/// kernel does not fault in fresh zeroed pages) per tensor. Peak size: the largest merged tensor in f32 plus its
/// output bytes.
final class MergeScratch {
    private var floatBuffer = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)
    private var byteBuffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    /// A buffer of `count` floats (contents undefined), valid until the next call.
    func floats(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        if floatBuffer.count < count {
            floatBuffer.deallocate()
            floatBuffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        }
        return UnsafeMutableBufferPointer(rebasing: floatBuffer[0..<count])
    }

    /// A buffer of `count` bytes (contents undefined), valid until the next call.
    func bytes(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if byteBuffer.count < count {
            byteBuffer.deallocate()
            byteBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        }
        return UnsafeMutableRawBufferPointer(rebasing: byteBuffer[0..<count])
    }

    /// A float tensor's values widened to f32 into ``floats(_:)``.
    func load(_ tensor: Tensor, threadCount: Int) throws(CheckpointError) -> UnsafeMutableBufferPointer<Float> {
        guard tensor.dtype.isConvertibleFloat else {
            throw CheckpointError(
                .unsupportedDType, "tensor '\(tensor.name)' is \(tensor.dtype), not a float type", tensor: tensor.name)
        }
        guard let count = tensor.shape.checkedElementCount,
            tensor.dtype.byteCount(elementCount: count) == tensor.bytes.count
        else {
            throw CheckpointError(
                .shapeMismatch,
                "tensor '\(tensor.name)': \(tensor.bytes.count) bytes do not hold \(tensor.shape) of \(tensor.dtype)",
                tensor: tensor.name)
        }
        let values = floats(count)
        tensor.bytes.withUnsafeBytes {
            HalfConversion.widen($0, from: tensor.dtype, into: values, threadCount: threadCount)
        }
        return values
    }

    // Write-behind: two buffers used in turn; a buffer is reused only after the writer thread has written it.
    private var behind = [UnsafeMutableRawBufferPointer](repeating: .init(start: nil, count: 0), count: 2)
    private let behindDone = [DispatchGroup(), DispatchGroup()]
    private var nextBehind = 0
    private let writerQueue = DispatchQueue(label: "nf4kit.merge.write-behind")
    private let writeFailure = FailureBox()

    /// The first error of the writer thread.
    final class FailureBox: Sendable {
        let first = Mutex<(any Error)?>(nil)
    }

    /// A write-behind buffer and its slot.
    struct BehindBuffer {
        let buffer: UnsafeMutableRawBufferPointer
        let slot: Int
    }

    /// The next write-behind buffer of `count` bytes, once its previous write is done. Throws an earlier write's
    /// error, so a failed write stops the merge at the next tensor.
    func writeBehindBuffer(_ count: Int) throws -> BehindBuffer {
        let slot = nextBehind
        nextBehind = 1 - slot
        behindDone[slot].wait()
        if let failure = writeFailure.first.withLock({ $0 }) { throw failure }
        if behind[slot].count < count {
            behind[slot].deallocate()
            behind[slot] = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        }
        return BehindBuffer(buffer: UnsafeMutableRawBufferPointer(rebasing: behind[slot][0..<count]), slot: slot)
    }

    /// Writes `buffer` on the writer thread; its error comes back from the next ``writeBehindBuffer(_:)`` or
    /// ``finishWrites()``.
    func writeBehind(_ buffer: BehindBuffer, _ write: @escaping @Sendable (UnsafeRawBufferPointer) throws -> Void) {
        let raw = UnsafeRawBufferPointer(buffer.buffer)
        let failure = writeFailure
        behindDone[buffer.slot].enter()
        nonisolated(unsafe) let bytes = raw
        writerQueue.async { [group = behindDone[buffer.slot]] in
            do { try write(bytes) } catch { failure.first.withLock { if $0 == nil { $0 = error } } }
            group.leave()
        }
    }

    /// Waits for every write-behind and throws the first error.
    func finishWrites() throws {
        writerQueue.sync {}
        if let failure = writeFailure.first.withLock({ $0 }) { throw failure }
    }

    deinit {
        writerQueue.sync {}
        floatBuffer.deallocate()
        byteBuffer.deallocate()
        for buffer in behind { buffer.deallocate() }
    }
}

// @unchecked Sendable: workers read `input` and write disjoint block ranges of `packed` and `absmax`, which all
// outlive the concurrentPerform call.
private struct QuantizeJob: @unchecked Sendable {
    let input: UnsafeRawBufferPointer
    let packed: UnsafeMutableRawBufferPointer
    let absmax: UnsafeMutableBufferPointer<Float>
}
