public import NF4KitCore

/// Caps that keep a hostile `.bin` file from exhausting memory or time; every one is checked before allocating.
public struct TorchReadLimits: Sendable {
    /// Most entries a zip archive may list. A checkpoint has one record per storage plus about 7;
    /// a million is far above any real model and bounds the directory we allocate.
    public var maxZipEntries = 1_000_000
    /// Most bytes all deflated entries of one archive may inflate to. `torch.save` never deflates, so only
    /// re-zipped files hit this; 4 GiB bounds the heap such a file can claim.
    public var maxInflatedBytes = 4 << 30
    /// Highest compressed-to-inflated ratio allowed for a deflated entry larger than
    /// ``deflateRatioExemptBytes``. Float weights deflate by about 1.1:1; deflate's own ceiling is 1032:1,
    /// so 100:1 only catches bombs (and all-zero tensors above the exemption, which torch never deflates).
    public var maxDeflateRatio = 100
    /// Deflated entries up to this size skip the ratio check (small all-zero tensors compress ~1000:1).
    public var deflateRatioExemptBytes = 1 << 20
    /// Largest `data.pkl` accepted (the spec's suggestion; a 100k-tensor state dict is ~20 MB).
    public var maxPickleBytes = 1 << 30
    /// Deepest pickle stack. SETITEMS/APPENDS batches hold at most 1000 pairs, so 100 000 leaves ample room.
    public var maxStackCount = 100_000
    /// Deepest MARK nesting (the spec suggests 10 000; a state dict uses 3).
    public var maxMarkDepth = 10_000
    /// Most distinct memo entries (~12 per tensor in torch's output, so this fits ~300 000 tensors).
    public var maxMemoCount = 4_000_000
    /// Deepest nesting of tuples, lists and dicts. A state dict nests 3 deep, an optimizer checkpoint ~6;
    /// 100 also keeps the recursive release of nested values far from the stack limit.
    public var maxNestingDepth = 100
    /// Whether to check each entry's CRC-32 when the central directory gives a non-zero one.
    public var verifyCRC = true

    /// The defaults above.
    public static var `default`: TorchReadLimits { TorchReadLimits() }

    /// Limits with the defaults above.
    public init() {}
}

/// A name that holds the same tensor as another one (tied weights): same storage, offset, shape and strides.
public struct TorchAlias: Sendable, Hashable {
    /// The name that a safetensors conversion drops.
    public var name: String
    /// The name it keeps: the lexicographically first name that covers the whole storage.
    public var target: String

    /// An alias of `name` to `target`.
    public init(name: String, target: String) {
        self.name = name
        self.target = target
    }
}

/// Everything read from a PyTorch checkpoint: the tensors plus what a converter needs about sharing.
public struct TorchCheckpoint: Sendable {
    /// All tensors of the state dict, in state-dict order, aliases included (each with its own view of the bytes).
    public var checkpoint: Checkpoint
    /// Names that repeat another tensor over the same storage, in state-dict order (see ``deduplicated()``).
    public var aliases: [TorchAlias]
    /// State-dict entries that are not tensors (ints, strings, nested dicts), by key, in order.
    public var skippedEntries: [String]

    /// The checkpoint as Hugging Face's safetensors conversion writes it: aliases dropped, and metadata
    /// `{"format": "pt", "<dropped>": "<kept>", ...}`.
    ///
    /// - Complexity: O(n) in the number of tensors.
    public func deduplicated() -> Checkpoint {
        let dropped = Set(aliases.map(\.name))
        var result = checkpoint
        result.tensors.removeAll { dropped.contains($0.name) }
        result.metadata["format"] = "pt"
        for alias in aliases { result.metadata[alias.name] = alias.target }
        return result
    }
}

/// Reads PyTorch `torch.save` checkpoints (`pytorch_model.bin`, `adapter_model.bin`, `*.pt`) without running
/// any of the pickle in them.
///
/// Only the zip format (PyTorch 1.6 and later) is read; the legacy pickle-stream format is refused with
/// an explanation (see `docs/torch-bin.md`). Stored storage records become views into the memory-mapped
/// file; deflated records, non-contiguous views and big-endian data are copied.
public enum TorchCheckpointReader {
    /// Reads a checkpoint file; tensors in state-dict order, aliases (tied weights) included.
    ///
    /// - Parameters:
    ///   - path: the `.bin` file.
    ///   - limits: resource caps (tests lower them).
    /// - Returns: A ``Checkpoint`` with format `.torch`; metadata is empty.
    /// - Throws: ``CheckpointError``: `.refused` for a global, opcode or zip entry outside what is allowed
    ///   (the message names it), `.malformedHeader`, `.truncated`, `.limitExceeded`, `.unsupported`,
    ///   `.unsupportedDType`, `.notFound`/`.io`.
    public static func read(path: String, limits: TorchReadLimits = .default) throws(CheckpointError) -> Checkpoint {
        try readDetailed(path: path, limits: limits).checkpoint
    }

    /// Reads a checkpoint file and reports aliases and skipped entries as well.
    ///
    /// - Throws: See ``read(path:limits:)``.
    public static func readDetailed(
        path: String, limits: TorchReadLimits = .default
    ) throws(CheckpointError) -> TorchCheckpoint {
        try readDetailed(region: MappedRegion(mapping: path), path: path, limits: limits)
    }

    /// Reads a checkpoint from bytes already in memory (the fuzzing entry point; `path` names them in errors).
    package static func readDetailed(
        region: MappedRegion, path: String, limits: TorchReadLimits = .default
    ) throws(CheckpointError) -> TorchCheckpoint {
        var budget = AllocationBudget(file: path, fileByteCount: region.count)
        if try checkContainer(region, file: path) == .legacy {
            var reader = StateDictReader(archive: nil, file: path, limits: limits, budget: budget)
            return try reader.readLegacy(region)
        }
        let archive = try ZipArchive(region: region, file: path, limits: limits, budget: &budget)
        var reader = StateDictReader(archive: archive, file: path, limits: limits, budget: budget)
        return try reader.read()
    }

    /// Reads a sharded checkpoint through its `pytorch_model.bin.index.json`.
    ///
    /// Shards are read in sorted file-name order (as transformers loads them). Every tensor of a shard must be
    /// listed for that shard in `weight_map`, and every listed name must be found.
    /// - Returns: The shards' tensors concatenated; ``Checkpoint/files`` lists the shard paths; metadata holds
    ///   the string members of the index's `metadata` object.
    /// - Throws: See ``read(path:limits:)``; `.malformedHeader` for a bad index, `.notFound` for a missing shard.
    public static func readSharded(
        indexPath: String, limits: TorchReadLimits = .default
    ) throws(CheckpointError) -> TorchCheckpoint {
        let region = try MappedRegion(mapping: indexPath)
        // An index is names and file names; 100 MB matches the safetensors header cap and fits any real model.
        let maxIndexBytes = 100_000_000
        guard region.count <= maxIndexBytes else {
            throw CheckpointError(
                .limitExceeded, "the index is \(region.count) bytes, more than the limit of \(maxIndexBytes)",
                file: indexPath)
        }
        let json = try region.withUnsafeBytes { bytes throws(CheckpointError) in
            try StrictJSON.parse(bytes, file: indexPath, what: "shard index")
        }
        guard let map = json["weight_map"]?.objectValue else {
            throw CheckpointError(.malformedHeader, "the shard index has no \"weight_map\" object", file: indexPath)
        }
        var shardOf: [String: String] = [:]
        for (name, value) in map {
            guard let shard = value.stringValue, isPlainFileName(shard) else {
                throw CheckpointError(
                    .malformedHeader, "weight_map entry '\(name)' must name a file in the index's folder",
                    file: indexPath, tensor: name)
            }
            shardOf[name] = shard
        }
        let folder = indexPath.contains("/") ? String(indexPath[...indexPath.lastIndex(of: "/")!]) : ""
        var result = TorchCheckpoint(
            checkpoint: Checkpoint(format: .torch, files: [], tensors: []), aliases: [], skippedEntries: [])
        for (key, value) in json["metadata"]?.objectValue ?? JSONObject() {
            if let text = value.stringValue { result.checkpoint.metadata[key] = text }
        }
        var found = Set<String>()
        for shard in Set(shardOf.values).sorted() {
            let path = folder + shard
            let part = try readDetailed(path: path, limits: limits)
            for tensor in part.checkpoint.tensors {
                guard shardOf[tensor.name] == shard else {
                    let listed = shardOf[tensor.name].map { "lists it in '\($0)'" } ?? "does not list it"
                    throw CheckpointError(
                        .malformedHeader, "tensor '\(tensor.name)' is in shard '\(shard)' but the index \(listed)",
                        file: path, tensor: tensor.name)
                }
                found.insert(tensor.name)
            }
            result.checkpoint.files.append(path)
            result.checkpoint.tensors += part.checkpoint.tensors
            result.aliases += part.aliases
            result.skippedEntries += part.skippedEntries
        }
        for name in map.keys where !found.contains(name) {
            throw CheckpointError(
                .malformedHeader, "the index lists tensor '\(name)' in '\(shardOf[name]!)' but that shard lacks it",
                file: indexPath, tensor: name)
        }
        return result
    }

    private static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\\")
            && !name.utf8.contains(0)
    }

    private enum Container { case zip, legacy }

    /// The legacy format's first pickle: PROTO 2, LONG1 0x1950A86A20F9469CFC6C (torch's MAGIC_NUMBER), STOP.
    fileprivate static let legacyMagic: [UInt8] = [
        0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E,
    ]

    /// Recognises the container by its first bytes (spec §0) and explains every other case.
    private static func checkContainer(_ region: MappedRegion, file: String) throws(CheckpointError) -> Container {
        try region.withUnsafeBytes { bytes throws(CheckpointError) -> Container in
            func starts(with prefix: [UInt8], at offset: Int = 0) -> Bool {
                bytes.count >= offset + prefix.count && bytes[offset..<(offset + prefix.count)].elementsEqual(prefix)
            }
            if starts(with: [0x50, 0x4B, 0x03, 0x04]) { return .zip }
            if starts(with: legacyMagic) { return .legacy }
            if starts(with: Array("version https://git-lfs.github.com/spec/v1".utf8)) {
                throw CheckpointError(
                    .malformedHeader,
                    "this is a Git LFS pointer, not the checkpoint: the file was not downloaded "
                        + "(run `git lfs pull`)", file: file, byteOffset: 0)
            }
            if starts(with: Array("ustar".utf8), at: 257) {
                throw CheckpointError(
                    .unsupported, "this is a tar archive (the oldest torch.save format), which nf4kit does not read",
                    file: file, byteOffset: 0)
            }
            if bytes.count >= 2, bytes[0] == 0x80 {
                throw CheckpointError(
                    .malformedHeader,
                    "a bare pickle stream without torch's legacy magic number is not a torch.save "
                        + "checkpoint; nf4kit reads no other pickles", file: file, byteOffset: 0)
            }
            throw CheckpointError(
                .malformedHeader, "not a PyTorch checkpoint: it does not start with a zip local header (PK\\3\\4)",
                file: file, byteOffset: 0)
        }
    }
}

/// Where a storage's bytes are: the bytes, their file offset, and whether they are a view of the file.
private struct StorageRecord {
    var bytes: TensorBytes
    var fileOffset: Int
    var isFileView: Bool
    var name: String
}

/// The per-file work: records, pickle, tensors. `archive` is `nil` for a legacy file.
private struct StateDictReader {
    let archive: ZipArchive?
    let file: String
    let limits: TorchReadLimits
    var inflated = 0
    /// The file's allocation budget: the zip directory, inflated records, pickle values and the tensor table.
    var budget: AllocationBudget
    /// Where `data.pkl` starts in the file, when it is stored there uncompressed.
    var pickleFileOffset: Int?
    /// Storage records already read, by key, with the storage type and count that first referenced them.
    var storages: [String: (record: StorageRecord, ref: PickleStorageRef)] = [:]
    var bigEndian = false

    init(archive: ZipArchive?, file: String, limits: TorchReadLimits, budget: AllocationBudget) {
        self.archive = archive
        self.file = file
        self.limits = limits
        self.budget = budget
    }

    func fail(_ code: CheckpointError.Code, _ message: String, tensor: String? = nil, at: Int? = nil) -> CheckpointError
    {
        CheckpointError(code, message, file: file, byteOffset: at.map(Int64.init), tensor: tensor)
    }

    mutating func record(_ name: String) throws(CheckpointError) -> (ZipArchive.Entry, TensorBytes)? {
        guard let archive, let entry = archive.entry(record: name) else { return nil }
        return (entry, try archive.contents(of: entry, inflatedSoFar: &inflated, budget: &budget))
    }

    mutating func read() throws(CheckpointError) -> TorchCheckpoint {
        guard let archive else { preconditionFailure("read() needs an archive") }
        let prefix = archive.prefix
        if archive.entry(record: "constants.pkl") != nil
            || archive.entries.contains(where: { $0.name.hasPrefix(prefix + "/code/") })
        {
            throw fail(
                .refused,
                "this is a TorchScript archive (torch.jit.save), not a state dict; PyTorch refuses to load "
                    + "these without running code too", at: 0)
        }
        // The version record (`.data/version` first, as PyTorch's reader does).
        var versionRecord = try record(".data/version")
        if versionRecord == nil { versionRecord = try record("version") }
        guard let (versionEntry, versionBytes) = versionRecord else {
            throw fail(.malformedHeader, "the archive '\(prefix)/' has no 'version' record", at: 0)
        }
        // Text records are a few bytes; look at no more than 32 of them.
        let versionText = String(decoding: versionBytes.slice(0..<min(versionBytes.count, 32)).array, as: UTF8.self)
        let trimmed = versionText.hasSuffix("\n") ? String(versionText.dropLast()) : versionText
        guard let version = Int(trimmed), (1...10).contains(version) else {
            throw fail(
                .malformedHeader,
                "'\(versionEntry.name)' holds '\(versionText.prefix(20))', not a format version "
                    + "from 1 to 10", at: versionEntry.dataOffset)
        }
        if let (entry, bytes) = try record("byteorder") {
            switch String(decoding: bytes.slice(0..<min(bytes.count, 32)).array, as: UTF8.self) {
            case "little": bigEndian = false
            case "big": bigEndian = true
            case let other:
                throw fail(
                    .malformedHeader, "'\(entry.name)' says '\(other)', not 'little' or 'big'", at: entry.dataOffset)
            }
        }
        guard let (pickleEntry, pickleBytes) = try record("data.pkl") else {
            throw fail(.malformedHeader, "the archive '\(prefix)/' has no 'data.pkl' record", at: 0)
        }
        let stored = pickleEntry.method == 0 ? pickleEntry.dataOffset : nil
        pickleFileOffset = stored
        let start = budget
        let (root, spent) = try pickleBytes.withUnsafeBytes { bytes throws(CheckpointError) in
            var unpickler = Unpickler(bytes, file: file, fileOffset: stored, limits: limits, budget: start)
            return (try unpickler.run(), unpickler.budget)
        }
        budget = spent
        let refs = try stateDict(root, pickleOffset: stored)
        return try makeCheckpoint(refs.tensors, skipped: refs.skipped)
    }

    /// The `(name, tensor)` pairs of the state dict (the top-level dict, or its "state_dict" member) and the
    /// keys of entries that are not tensors.
    func stateDict(
        _ root: PickleValue, pickleOffset stored: Int?
    ) throws(CheckpointError) -> (tensors: [(String, PickleTensorRef)], skipped: [String]) {
        // The state dict: the top-level dict, or its "state_dict" member.
        guard case .dict(var dict) = root else {
            throw fail(.unsupported, "the checkpoint holds a \(root.kind), not a dict of tensors", at: stored)
        }
        if case .dict(let inner) = dict["state_dict"] { dict = inner }
        var refs: [(String, PickleTensorRef)] = []
        var skipped: [String] = []
        for (key, value) in zip(dict.keys, dict.values) {
            let name: String
            switch key {
            case .string(let text): name = text
            case .int(let number): name = String(number)
            default: name = "<\(key.kind) key>"
            }
            if case .tensor(let ref) = value, case .string = key {
                refs.append((name, ref))
            } else {
                skipped.append(name)
            }
        }
        if refs.isEmpty && !skipped.isEmpty {
            throw fail(
                .unsupported,
                "the checkpoint has no tensors at its top level (entries: "
                    + skipped.prefix(8).joined(separator: ", ") + "); only state dicts are read", at: stored)
        }
        return (refs, skipped)
    }

    mutating func makeCheckpoint(
        _ refs: [(String, PickleTensorRef)], skipped: [String]
    ) throws(CheckpointError) -> TorchCheckpoint {
        var tensors: [Tensor] = []
        var layouts: [(name: String, ref: PickleTensorRef, coversStorage: Bool)] = []
        for (name, ref) in refs {
            // The tensor, its layout record, name, shape and strides (twice: the ref and the descriptor).
            try budget.charge(
                MemoryLayout<Tensor>.stride + 2 * MemoryLayout<PickleTensorRef>.stride
                    + AllocationBudget.stringByteCount(utf8Count: name.utf8.count)
                    + 3 * AllocationBudget.arrayByteCount(count: ref.shape.count, stride: 8),
                for: "the table entry of tensor '\(name)'", at: Int64((pickleFileOffset ?? 0) + ref.pickleOffset))
            let (tensor, covers) = try makeTensor(name, ref)
            tensors.append(tensor)
            layouts.append((name, ref, covers))
        }
        return TorchCheckpoint(
            checkpoint: Checkpoint(format: .torch, files: [file], tensors: tensors),
            aliases: findAliases(layouts), skippedEntries: skipped)
    }

    /// Safetensors-conversion sharing rule (spec §6): within each storage, the lexicographically first name that
    /// covers the whole storage is kept; names with exactly its layout are its aliases; other views stay tensors.
    func findAliases(_ layouts: [(name: String, ref: PickleTensorRef, coversStorage: Bool)]) -> [TorchAlias] {
        var byKey: [String: [Int]] = [:]
        for (index, layout) in layouts.enumerated() { byKey[layout.ref.storage.key, default: []].append(index) }
        var targetOf: [String: String] = [:]
        for (_, members) in byKey where members.count > 1 {
            guard
                let keep = members.filter({ layouts[$0].coversStorage }).min(by: { layouts[$0].name < layouts[$1].name }
                )
            else { continue }
            let kept = layouts[keep].ref
            for member in members where member != keep {
                let ref = layouts[member].ref
                if ref.storageOffset == kept.storageOffset && ref.shape == kept.shape && ref.strides == kept.strides
                    && ref.dtypeName == kept.dtypeName
                {
                    targetOf[layouts[member].name] = layouts[keep].name
                }
            }
        }
        return layouts.compactMap { layout in targetOf[layout.name].map { TorchAlias(name: layout.name, target: $0) } }
    }

    /// Builds one tensor from its rebuild call and storage record (spec §3).
    mutating func makeTensor(_ name: String, _ ref: PickleTensorRef) throws(CheckpointError) -> (Tensor, Bool) {
        let at = ref.pickleOffset
        func bad(_ code: CheckpointError.Code, _ message: String) -> CheckpointError {
            fail(code, "tensor '\(name)': \(message) (data.pkl offset \(at))", tensor: name)
        }
        guard let dtype = ref.dtype else {
            throw bad(.unsupportedDType, "dtype '\(ref.dtypeName)' has no safetensors counterpart")
        }
        // As with dtypes, a state dict is read as the safetensors checkpoint it converts to, where this key is the
        // metadata object: refuse it here (naming the file) rather than fail later in a writer.
        guard name != "__metadata__" else {
            throw bad(
                .refused,
                "the key '__metadata__' is reserved by safetensors for its metadata object; rename it to convert "
                    + "or inspect this state dict")
        }
        let record = try storage(for: ref.storage, tensor: name)
        let storageBytes = record.bytes
        // Element size in bytes; float4_e2m1fn_x2 elements are bytes holding two values.
        let elementSize = dtype == .f4 ? 1 : dtype.bitWidth / 8
        guard let elementCount = Shape(ref.shape).checkedElementCount else {
            throw bad(.malformedHeader, "shape \(ref.shape) overflows")
        }
        let length = storageBytes.count
        // The bytes the tensor occupies once row-major; a view that repeats storage elements (stride 0,
        // overlapping strides) could declare far more than the file holds, so it may not exceed its storage.
        let (byteCount, countOverflow) = elementCount.multipliedReportingOverflow(by: elementSize)
        guard !countOverflow, byteCount <= length else {
            throw bad(
                .malformedHeader,
                "shape \(ref.shape) of \(ref.dtypeName) needs more bytes than its storage "
                    + "'\(ref.storage.key)' holds (\(length)); views that repeat elements are not read")
        }
        if elementCount > 0 {
            var maxIndex = ref.storageOffset
            for (size, stride) in zip(ref.shape, ref.strides) {
                let (step, overflow1) = (size - 1).multipliedReportingOverflow(by: stride)
                let (sum, overflow2) = maxIndex.addingReportingOverflow(step)
                guard !overflow1, !overflow2 else { throw bad(.malformedHeader, "strides overflow") }
                maxIndex = sum
            }
            let (count, overflow1) = maxIndex.addingReportingOverflow(1)
            let (end, overflow2) = count.multipliedReportingOverflow(by: elementSize)
            guard !overflow1, !overflow2, end <= length else {
                throw bad(
                    .malformedHeader,
                    "the view (offset \(ref.storageOffset), shape \(ref.shape), strides \(ref.strides)) "
                        + "reaches past its storage '\(ref.storage.key)' of \(length) bytes")
            }
        } else {
            guard !ref.storageOffset.multipliedReportingOverflow(by: elementSize).overflow else {
                throw bad(.malformedHeader, "storage offset \(ref.storageOffset) overflows")
            }
        }
        var shape = ref.shape
        if dtype == .f4 {
            guard let last = shape.last else { throw bad(.unsupportedDType, "a 0-d float4_e2m1fn_x2 tensor") }
            shape[shape.count - 1] = last * 2
        }
        // Contiguous: scanning from the last dimension, each stride equals the product of later sizes
        // (dimensions of size 1 may have any stride).
        var contiguous = true
        var expected = 1
        for (size, stride) in zip(ref.shape, ref.strides).reversed() where size != 1 {
            if stride != expected { contiguous = false }
            expected = expected &* size
        }
        let start = elementCount == 0 ? 0 : ref.storageOffset * elementSize
        let coversStorage = contiguous && ref.storageOffset == 0 && byteCount == length
        let swap = bigEndian && elementSize > 1
        let bytes: TensorBytes
        if (contiguous || elementCount == 0) && !swap {
            bytes = storageBytes.slice(start..<(start + byteCount))
        } else {
            // Copied when first read, not here: inspecting reads no tensor data, and a file that declares
            // thousands of views over one storage costs one copy at a time while a pipeline writes them.
            let (offset, viewShape, strides) = (ref.storageOffset, ref.shape, ref.strides)
            let region = MappedRegion(deferred: byteCount, description: "\(file) (tensor \(name))") { destination in
                storageBytes.withUnsafeBytes { source in
                    Self.copyStrided(
                        source, into: destination, offset: offset, shape: viewShape, strides: strides,
                        elementSize: elementSize)
                }
                if swap {
                    let swapSize = dtype == .c64 ? 4 : elementSize  // complex: each component separately
                    Self.swapBytes(destination, size: swapSize)
                }
            }
            bytes = region.all
        }
        let fileOffset = Int64(record.fileOffset + (record.isFileView ? start : 0))
        let descriptor = TensorDescriptor(
            name: name, dtype: dtype, shape: Shape(shape), file: file, fileOffset: fileOffset, byteCount: byteCount)
        return (Tensor(descriptor: descriptor, bytes: bytes), coversStorage)
    }

    /// The bytes of a storage record, read once per key; checks one type and count per key and the exact size.
    mutating func storage(for ref: PickleStorageRef, tensor: String) throws(CheckpointError) -> StorageRecord {
        if let known = storages[ref.key] {
            guard known.ref.type == ref.type, known.ref.elementCount == ref.elementCount else {
                throw fail(
                    .malformedHeader,
                    "storage '\(ref.key)' is referenced as \(known.ref.elementCount) × "
                        + "\(known.ref.type.qualifiedName) and as \(ref.elementCount) × \(ref.type.qualifiedName)",
                    tensor: tensor, at: nil)
            }
            return known.record
        }
        guard case .storageType(let typeName, let storageDType, let untyped) = ref.type else {
            throw fail(.malformedHeader, "storage '\(ref.key)' has no storage type", tensor: tensor)
        }
        guard let storageDType else {
            throw fail(
                .unsupportedDType, "tensor '\(tensor)': storage type '\(typeName)' has no safetensors counterpart",
                tensor: tensor)
        }
        guard let (entry, bytes) = try record("data/" + ref.key) else {
            let place = archive.map { "storage record '\($0.prefix)/data/\(ref.key)'" } ?? "storage '\(ref.key)'"
            throw fail(.malformedHeader, "tensor '\(tensor)': \(place) is missing", tensor: tensor)
        }
        let elementSize = untyped ? 1 : storageDType.bitWidth / 8
        let (expected, overflow) = ref.elementCount.multipliedReportingOverflow(by: elementSize)
        guard !overflow, expected == bytes.count else {
            throw fail(
                .malformedHeader,
                "tensor '\(tensor)': storage record '\(entry.name)' has \(bytes.count) bytes but "
                    + "its persistent id declares \(ref.elementCount) × \(elementSize) bytes", tensor: tensor,
                at: entry.dataOffset)
        }
        let record = StorageRecord(
            bytes: bytes, fileOffset: entry.dataOffset, isFileView: entry.method == 0, name: entry.name)
        storages[ref.key] = (record, ref)
        return record
    }

    /// Copies a strided view into a row-major buffer, one run along the last dimension at a time.
    static func copyStrided(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, offset: Int,
        shape: [Int], strides: [Int], elementSize: Int
    ) {
        guard destination.count > 0 else { return }
        let rank = shape.count
        if rank == 0 {
            destination.copyMemory(
                from: UnsafeRawBufferPointer(rebasing: source[(offset * elementSize)...].prefix(elementSize)))
            return
        }
        let inner = shape[rank - 1]
        let innerStride = strides[rank - 1]
        var index = [Int](repeating: 0, count: rank - 1)
        var written = 0
        while written < destination.count {
            var base = offset
            for dimension in 0..<(rank - 1) { base += index[dimension] * strides[dimension] }
            if innerStride == 1 {
                let count = inner * elementSize
                (destination.baseAddress! + written).copyMemory(
                    from: source.baseAddress! + base * elementSize, byteCount: count)
                written += count
            } else {
                for element in 0..<inner {
                    (destination.baseAddress! + written).copyMemory(
                        from: source.baseAddress! + (base + element * innerStride) * elementSize, byteCount: elementSize
                    )
                    written += elementSize
                }
            }
            var dimension = rank - 2
            while dimension >= 0 {
                index[dimension] += 1
                if index[dimension] < shape[dimension] { break }
                index[dimension] = 0
                dimension -= 1
            }
        }
    }

    /// Reverses the bytes of every `size`-byte element in place.
    static func swapBytes(_ buffer: UnsafeMutableRawBufferPointer, size: Int) {
        var start = 0
        while start + size <= buffer.count {
            var low = start
            var high = start + size - 1
            while low < high {
                buffer.swapAt(low, high)
                low += 1
                high -= 1
            }
            start += size
        }
    }
}

// MARK: - Legacy (pre-1.6) files

extension StateDictReader {
    /// Reads the legacy stream (spec §7): magic, protocol version, system info, the object, the storage keys,
    /// then for each key in list order an 8-byte little-endian element count and the raw elements.
    mutating func readLegacy(_ region: MappedRegion) throws(CheckpointError) -> TorchCheckpoint {
        let file = self.file
        let limits = self.limits
        var offset = TorchCheckpointReader.legacyMagic.count
        func nextPickle() throws(CheckpointError) -> (PickleValue, Int) {
            let start = offset
            let (value, count) = try region.withUnsafeBytes { bytes throws(CheckpointError) in
                let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
                var unpickler = Unpickler(rest, file: file, fileOffset: start, limits: limits, isLegacy: true)
                let value = try unpickler.run()
                return (value, unpickler.consumedByteCount)
            }
            offset += count
            return (value, start)
        }
        let (protocolVersion, protocolOffset) = try nextPickle()
        guard case .int(1001) = protocolVersion else {
            throw fail(
                .unsupported, "legacy protocol version is \(protocolVersion.kind), not 1001", at: protocolOffset)
        }
        let (systemInfo, systemOffset) = try nextPickle()
        guard case .dict(let info) = systemInfo else {
            throw fail(.malformedHeader, "legacy system info is a \(systemInfo.kind), not a dict", at: systemOffset)
        }
        guard case .bool(true) = info["little_endian"] ?? .bool(false) else {
            // PyTorch's own legacy loader does not byte-swap these either (spec §9).
            throw fail(.unsupported, "a legacy file written on a big-endian machine is not supported", at: systemOffset)
        }
        let (root, rootOffset) = try nextPickle()
        let refs = try stateDict(root, pickleOffset: rootOffset)
        let (keyList, keysOffset) = try nextPickle()
        guard case .list(let keyValues) = keyList else {
            throw fail(.malformedHeader, "legacy storage key list is a \(keyList.kind), not a list", at: keysOffset)
        }
        // The storage types and counts the tensors declare, by key.
        var declared: [String: PickleStorageRef] = [:]
        for (_, ref) in refs.tensors where declared[ref.storage.key] == nil { declared[ref.storage.key] = ref.storage }
        for value in keyValues.items {
            guard case .string(let key) = value else {
                throw fail(.malformedHeader, "legacy storage key list holds a \(value.kind)", at: keysOffset)
            }
            guard let ref = declared[key], storages[key] == nil else {
                throw fail(
                    .malformedHeader, "legacy storage '\(key)' is listed twice or used by no tensor", at: keysOffset)
            }
            guard case .storageType(_, let dtype?, let untyped) = ref.type else {
                throw fail(.unsupportedDType, "legacy storage '\(key)' has type \(ref.type.qualifiedName)", at: offset)
            }
            guard region.count - offset >= 8 else {
                throw fail(.truncated, "the file ends before the element count of storage '\(key)'", at: offset)
            }
            let count = region.withUnsafeBytes {
                Int64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: Int64.self))
            }
            guard count == Int64(ref.elementCount) else {
                throw fail(
                    .malformedHeader,
                    "legacy storage '\(key)' holds \(count) elements but its persistent id "
                        + "declares \(ref.elementCount)", at: offset)
            }
            let elementSize = untyped ? 1 : dtype.bitWidth / 8
            let (byteCount, overflow) = ref.elementCount.multipliedReportingOverflow(by: elementSize)
            let start = offset + 8
            guard !overflow, byteCount <= region.count - start else {
                throw fail(
                    .truncated,
                    "legacy storage '\(key)' needs \(ref.elementCount) × \(elementSize) bytes at \(start) "
                        + "but the file has \(region.count - start) left", at: offset)
            }
            let record = StorageRecord(
                bytes: TensorBytes(region: region, range: start..<(start + byteCount)), fileOffset: start,
                isFileView: true, name: key)
            storages[key] = (record, ref)
            offset = start + byteCount
        }
        guard offset == region.count else {
            throw fail(.malformedHeader, "\(region.count - offset) bytes follow the last legacy storage", at: offset)
        }
        return try makeCheckpoint(refs.tensors, skipped: refs.skipped)
    }
}
