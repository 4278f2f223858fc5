public import NF4KitCore
import NF4KitQuant
public import NF4KitFormats

/// Everything `nf4kit inspect` reports about a checkpoint, as values: summary, tensor table, memory breakdown,
/// adapter facts and (on request) a training-memory estimate.
///
/// Built from the headers alone plus the small quant-state JSON blobs of 4-bit weights, so inspecting a sharded
/// 7B folder reads a few megabytes. Nothing here prints; the command-line tool renders it as text or JSON
/// (see ``InspectionReport/jsonValue``).
public struct InspectionReport: Sendable, Hashable {
    /// Version of the JSON document's layout; bumped when a field changes meaning or disappears.
    public static let schemaVersion = 1

    /// Whether the input is a model or a PEFT adapter.
    public enum Kind: String, Sendable, Hashable {
        case model
        case adapter
    }

    /// The headline numbers.
    public struct Summary: Sendable, Hashable {
        /// The path that was inspected.
        public var path: String
        /// The container (`safetensors`, `gguf`, `torch`).
        public var format: String
        /// Model or adapter.
        public var kind: Kind
        /// The weight files read, in order.
        public var files: [String]
        /// Sum of the weight files' sizes on disk (headers included).
        public var fileByteCount: Int64
        /// `architectures[0]` (or `model_type`) of `config.json`, if any.
        public var architecture: String?
        /// Tensors as stored (4-bit companions counted separately).
        public var storedTensorCount: Int
        /// Logical tensors: each 4-bit weight counts once, its companions not at all.
        public var tensorCount: Int
        /// Parameters, 4-bit weights counted by their logical shape; companions are not parameters.
        public var parameterCount: Int
        /// Bytes of tensor data.
        public var byteCount: Int
        /// Number of bitsandbytes 4-bit weights.
        public var quantizedTensorCount: Int
        /// Their quant types (`nf4`, `fp4`), sorted.
        public var quantTypes: [String]
        /// Their block sizes, sorted.
        public var blockSizes: [Int]
        /// How many of them are double-quantized.
        public var doubleQuantizedTensorCount: Int
    }

    /// What a 4-bit weight's row adds.
    public struct FourBitDetails: Sendable, Hashable {
        /// `nf4` or `fp4`.
        public var quantType: String
        /// Elements per first-level block.
        public var blockSize: Int
        /// Whether `absmax` is itself quantized (nested constants present).
        public var isDoubleQuantized: Bool
        /// The torch dtype the weight had before quantization (`bfloat16`, `float16`, `float32`).
        public var weightDType: String
        /// Shape of the packed codes tensor (`[(n + 1) / 2, 1]` for U8 storage).
        public var storedShape: Shape
        /// Bytes of packed codes.
        public var codeByteCount: Int
        /// Bytes of first-level constants (`absmax`).
        public var absmaxByteCount: Int
        /// Bytes of nested constants and code maps: `nested_absmax`, `quant_map`, `nested_quant_map`, quant state.
        public var nestedByteCount: Int
        /// Nested block size and offset when double-quantized.
        public var nestedBlockSize: Int?
        /// The double-quantization offset (mean of the first-level absmax) from the quant state.
        public var nestedOffset: Double?
    }

    /// One logical tensor.
    public struct TensorRow: Sendable, Hashable {
        /// The tensor's name (for a 4-bit weight, the codes tensor's name).
        public var name: String
        /// The stored dtype (U8 for the packed codes of a 4-bit weight).
        public var dtype: DType
        /// The logical shape (for a 4-bit weight, the shape before quantization).
        public var shape: Shape
        /// Elements of the logical shape.
        public var parameterCount: Int
        /// Bytes stored for this tensor, 4-bit companions included.
        public var byteCount: Int
        /// Present for bitsandbytes 4-bit weights.
        public var fourBit: FourBitDetails? {
            get { fourBitBox?.details }
            set { fourBitBox = newValue.map(FourBitBox.init) }
        }
        /// Boxed: inline, the details made every row (millions in a hostile header) about 100 bytes larger.
        private var fourBitBox: FourBitBox?

        init(
            name: String, dtype: DType, shape: Shape, parameterCount: Int, byteCount: Int,
            fourBit: FourBitDetails?
        ) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.parameterCount = parameterCount
            self.byteCount = byteCount
            self.fourBit = fourBit
        }
    }

    private final class FourBitBox: Sendable, Hashable {
        let details: FourBitDetails
        init(_ details: FourBitDetails) { self.details = details }
        static func == (lhs: FourBitBox, rhs: FourBitBox) -> Bool { lhs.details == rhs.details }
        func hash(into hasher: inout Hasher) { hasher.combine(details) }
    }

    /// The headline numbers.
    public var summary: Summary
    /// Logical tensors in natural name order (`layers.2` before `layers.10`).
    public var tensors: [TensorRow]
    /// Bytes by role and the comparison with other storage formats.
    public var memory: MemoryBreakdown
    /// Present for a PEFT adapter folder.
    public var adapter: AdapterSummary?
    /// Present when training options were given (models only).
    public var training: TrainingMemory?
    /// Present for a GGUF file: header, metadata and ggml storage types.
    public var gguf: GGUFSection?

    /// Inspects an opened model or adapter.
    ///
    /// - Parameters:
    ///   - source: a file or folder opened with `ModelSource.open(_:)` (module NF4Kit).
    ///   - training: LoRA settings for the training-memory estimate, or `nil` for none.
    /// - Throws: `CheckpointError`: `.malformedHeader` (naming the tensor, file and byte offset) for a 4-bit weight
    ///   whose companions or quant state are missing or inconsistent; `.invalidArgument` for training options that
    ///   do not fit the model, or for training options on an adapter.
    /// - Complexity: O(t log t) for t stored tensors; reads no tensor data except quant-state blobs.
    public static func inspect(
        _ source: ModelSource, training: TrainingMemoryOptions? = nil
    ) throws(CheckpointError) -> InspectionReport {
        var fileBytes: Int64 = 0
        for file in source.checkpoint.files { fileBytes += try FileAccess.fileSize(file) }
        let adapterConfigPath = source.isFolder ? source.path + "/adapter_config.json" : source.path
        var blockTypes: [String: String] = [:]
        for info in source.gguf?.tensors ?? [] where info.type.dtype == nil { blockTypes[info.name] = info.type.name }
        // A llama.cpp LoRA adapter (convert_lora_to_gguf.py, `convert ADAPTER -o x.gguf`) says so in its header.
        var isGGUFAdapter = false
        if case .string(let type)? = source.gguf?["general.type"] { isGGUFAdapter = type == "adapter" }
        var report = try InspectionReport(
            checkpoint: source.checkpoint, path: source.path, fileByteCount: fileBytes, config: source.config,
            adapterConfig: source.adapterConfig, adapterConfigPath: adapterConfigPath, isAdapter: isGGUFAdapter,
            training: training, ggmlBlockTypes: blockTypes)
        if let file = source.gguf {
            report.gguf = GGUFSection(file: file)
            if report.summary.architecture == nil, case .string(let name)? = file["general.architecture"] {
                report.summary.architecture = name
            }
        }
        return report
    }

    /// Inspects a checkpoint from any container.
    ///
    /// - Parameters:
    ///   - adapterConfig: the parsed `adapter_config.json` when the checkpoint is a PEFT adapter.
    ///   - adapterConfigPath: where it was read from, for error messages.
    ///   - isAdapter: the checkpoint is an adapter without `adapter_config.json` (a llama.cpp LoRA GGUF).
    /// - Throws: as ``inspect(_:training:)``.
    public init(
        checkpoint: Checkpoint, path: String, fileByteCount: Int64, config: JSONObject? = nil,
        adapterConfig: JSONObject? = nil, adapterConfigPath: String = "adapter_config.json", isAdapter: Bool = false,
        training: TrainingMemoryOptions? = nil, ggmlBlockTypes: [String: String] = [:]
    ) throws(CheckpointError) {
        let isAdapter = isAdapter || adapterConfig != nil
        let analysis = try CheckpointAnalysis(
            checkpoint: checkpoint, isAdapter: isAdapter, ggmlBlockTypes: ggmlBlockTypes)
        let breakdown = MemoryBreakdown(analysis: analysis, totalByteCount: checkpoint.totalByteCount)
        let groups = analysis.groups
        summary = Summary(
            path: path, format: checkpoint.format.rawValue, kind: isAdapter ? .adapter : .model,
            files: checkpoint.files,
            fileByteCount: fileByteCount, architecture: InspectionReport.architecture(config),
            storedTensorCount: checkpoint.tensors.count, tensorCount: analysis.entries.count,
            parameterCount: analysis.parameterCount, byteCount: checkpoint.totalByteCount,
            quantizedTensorCount: groups.count, quantTypes: Set(groups.map(\.tensor.quantType.rawValue)).sorted(),
            blockSizes: Set(groups.map(\.tensor.blocksize)).sorted(),
            doubleQuantizedTensorCount: groups.filter(\.tensor.isDoubleQuantized).count)
        // Sorted as indices first, so that the rows (millions in a hostile header) exist once, not in a mapped and
        // a sorted copy plus the sort's buffer.
        let entries = analysis.entries
        let order = entries.indices.sorted { NaturalOrder.precedes(entries[$0].name, entries[$1].name) }
        tensors = order.map { index in
            let entry = entries[index]
            var row = TensorRow(
                name: entry.name, dtype: entry.dtype, shape: entry.shape, parameterCount: entry.parameterCount,
                byteCount: entry.storedByteCount, fourBit: nil)
            if let group = entry.group, let codes = group.member("")?.descriptor,
                let absmax = group.member(".absmax")?.descriptor
            {
                let q = group.tensor
                var nested: (blocksize: Int, offset: Double)?
                if case .double(let dq) = q.statistics { nested = (dq.nestedBlocksize, Double(dq.offset)) }
                row.dtype = codes.dtype
                row.fourBit = FourBitDetails(
                    quantType: q.quantType.rawValue, blockSize: q.blocksize, isDoubleQuantized: q.isDoubleQuantized,
                    weightDType: q.dtype.torchName ?? q.dtype.rawValue, storedShape: codes.shape,
                    codeByteCount: codes.byteCount, absmaxByteCount: absmax.byteCount,
                    nestedByteCount: entry.storedByteCount - codes.byteCount - absmax.byteCount,
                    nestedBlockSize: nested?.blocksize, nestedOffset: nested?.offset)
            }
            return row
        }
        memory = breakdown
        if let adapterConfig {
            adapter = try AdapterSummary(config: adapterConfig, configPath: adapterConfigPath, checkpoint: checkpoint)
        }
        if let training {
            guard !isAdapter else {
                throw CheckpointError(
                    .invalidArgument, "training memory is estimated for a base model, and this is a LoRA adapter",
                    file: path)
            }
            self.training = try TrainingMemory(analysis: analysis, breakdown: breakdown, options: training)
        }
    }

    private static func architecture(_ config: JSONObject?) -> String? {
        guard let config else { return nil }
        if let first = config["architectures"]?.arrayValue?.first?.stringValue { return first }
        return config["model_type"]?.stringValue
    }
}

/// Orders names so that runs of digits compare as numbers: `layers.2` < `layers.10`.
enum NaturalOrder {
    static func precedes(_ a: String, _ b: String) -> Bool {
        var i = a.utf8.makeIterator(), j = b.utf8.makeIterator()
        var x = i.next(), y = j.next()
        while let cx = x, let cy = y {
            if isDigit(cx) && isDigit(cy) {
                var nx: [UInt8] = [], ny: [UInt8] = []
                while let c = x, isDigit(c) { nx.append(c); x = i.next() }
                while let c = y, isDigit(c) { ny.append(c); y = j.next() }
                let tx = nx.drop { $0 == 0x30 }, ty = ny.drop { $0 == 0x30 }
                if tx.count != ty.count { return tx.count < ty.count }
                if !tx.elementsEqual(ty) { return tx.lexicographicallyPrecedes(ty) }
                if nx.count != ny.count { return nx.count < ny.count }
                continue
            }
            if cx != cy { return cx < cy }
            x = i.next()
            y = j.next()
        }
        return x == nil && y != nil
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
}
