public import NF4KitCore

/// Reads safetensors files with every validation of the reference reader (safetensors 0.8.0), plus stricter ones.
///
/// The file is memory-mapped; tensors are views into the mapping, so reading costs the header only.
/// Stricter than the reference: duplicate keys anywhere in the header are rejected (the reference keeps the
/// last one), and so is a tensor named `__metadata__` that is not the metadata object.
public enum SafetensorsReader {
    /// Largest header accepted (safetensors `MAX_HEADER_SIZE`, 100 MB decimal).
    public static let maxHeaderBytes: UInt64 = 100_000_000

    /// Reads and validates the file at `path`.
    ///
    /// - Returns: A checkpoint whose tensors are in data order.
    /// - Throws: ``CheckpointError``: `.truncated`, `.limitExceeded`, `.malformedHeader` or `.unsupportedDType`,
    ///   naming the file, the byte offset and the tensor; `.io`/`.notFound` if the file cannot be mapped.
    public static func read(path: String) throws(CheckpointError) -> Checkpoint {
        let region = try MappedRegion(mapping: path)
        return try read(region: region, path: path)
    }

    /// Validates the bytes of `region` as a safetensors file named `path`.
    public static func read(region: MappedRegion, path: String) throws(CheckpointError) -> Checkpoint {
        let parsed: Result<Checkpoint, CheckpointError> = region.withUnsafeBytes { raw in
            do throws(CheckpointError) { return .success(try parse(raw, region: region, path: path)) } catch {
                return .failure(error)
            }
        }
        return try parsed.get()
    }

    /// What a file whose first 8 bytes are not a usable header length is instead, when that can be told.
    ///
    /// A Git LFS pointer (the repository was cloned without `git lfs`), a GGUF file, a zip (PyTorch) archive, a
    /// pickle, an HTML page or other text would otherwise be reported as an absurd header length.
    static func notSafetensors(_ raw: UnsafeRawBufferPointer) -> String? {
        func starts(with text: String) -> Bool {
            let prefix = Array(text.utf8)
            return raw.count >= prefix.count && raw[0..<prefix.count].elementsEqual(prefix)
        }
        if starts(with: "version https://git-lfs.github.com/spec/") {
            return "this is a Git LFS pointer, not the tensors: the file was not downloaded (run `git lfs pull`)"
        }
        if starts(with: "GGUF") { return "this is a GGUF file, not a safetensors file" }
        if starts(with: "PK\u{03}\u{04}") || starts(with: "PK\u{05}\u{06}") {
            return "this is a zip archive (a PyTorch checkpoint?), not a safetensors file"
        }
        if raw.count >= 2, raw[0] == 0x80, raw[1] <= 5 { return "this is a pickle stream, not a safetensors file" }
        let lead = raw.prefix(64)
        let lowered = String(decoding: lead, as: UTF8.self).lowercased()
        if lowered.contains("<!doctype html") || lowered.contains("<html") {
            return "this is an HTML page (a failed download?), not a safetensors file"
        }
        let printable = lead.allSatisfy { (0x20..<0x7F).contains($0) || [0x09, 0x0A, 0x0D].contains($0) }
        if raw.count >= 8, printable {
            let shown = String(decoding: raw.prefix(24).map { $0 < 0x20 ? 0x20 : $0 }, as: UTF8.self)
            return
                "the file starts with text ('\(shown)'), not a safetensors header length: it is not a safetensors file"
        }
        return nil
    }

    private struct Entry {
        var name: String
        var dtype: DType
        var shape: Shape
        var begin: Int
        var end: Int
        /// Where the entry's key starts in the file.
        var keyOffset: Int64
    }

    private static func parse(
        _ raw: UnsafeRawBufferPointer, region: MappedRegion, path: String
    ) throws(CheckpointError) -> Checkpoint {
        let fileSize = raw.count
        guard fileSize >= 8 else {
            throw CheckpointError(
                .truncated,
                "the file has \(fileSize) bytes; a safetensors file starts with an 8-byte header length (HeaderTooSmall)",
                file: path, byteOffset: 0)
        }
        let headerLength = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
        if headerLength > maxHeaderBytes || 8 + Int(headerLength) > fileSize, let other = notSafetensors(raw) {
            throw CheckpointError(.malformedHeader, other, file: path, byteOffset: 0)
        }
        guard headerLength <= maxHeaderBytes else {
            throw CheckpointError(
                .limitExceeded,
                "the header length \(headerLength) exceeds the limit of \(maxHeaderBytes) bytes (HeaderTooLarge)",
                file: path, byteOffset: 0)
        }
        guard 8 + Int(headerLength) <= fileSize else {
            throw CheckpointError(
                .truncated,
                "the header length \(headerLength) runs past the end of the file (\(fileSize) bytes) (InvalidHeaderLength)",
                file: path, byteOffset: 0)
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: raw[8..<(8 + Int(headerLength))])
        // One pass over the header: each member becomes a compact entry as soon as it is parsed, so a header of
        // millions of tensors never exists as a JSON tree (memory is a small multiple of the header's size).
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        // Each entry and, later, its tensor are charged to the file's budget before they exist.
        var budget = AllocationBudget(file: path, fileByteCount: fileSize)
        let isObject = try StrictJSON.forEachMember(
            headerBytes, file: path, baseOffset: 8, what: "safetensors header", keysNameTensors: true,
            retainedFields: ["dtype", "shape", "data_offsets"], budget: &budget
        ) { (key, keyOffset, value, budget) throws(CheckpointError) in
            guard key == "__metadata__" else {
                let entry = try entry(key, value, offset: keyOffset, path: path)
                // The entry (twice while the array grows) and its tensor: name, shape and descriptor.
                let name = AllocationBudget.stringByteCount(utf8Count: key.utf8.count)
                let shape = AllocationBudget.arrayByteCount(count: entry.shape.rank, stride: 8)
                try budget.charge(
                    2 * MemoryLayout<Entry>.stride + MemoryLayout<Tensor>.stride + name + shape,
                    for: "the table entry of tensor '\(key)'", at: keyOffset)
                entries.append(entry)
                return
            }
            switch value {
            case .null: return
            case .object(let object):
                for (metaKey, metaValue) in object {
                    guard case .string(let text) = metaValue else {
                        throw CheckpointError(
                            .malformedHeader, "metadata value of '\(metaKey)' is not a string", file: path,
                            byteOffset: keyOffset)
                    }
                    try budget.charge(
                        64 + AllocationBudget.stringByteCount(utf8Count: metaKey.utf8.count)
                            + AllocationBudget.stringByteCount(utf8Count: text.utf8.count),
                        for: "the metadata entry '\(metaKey)'", at: keyOffset)
                    metadata[metaKey] = text
                }
            default:
                throw CheckpointError(
                    .malformedHeader, "__metadata__ must be an object of strings", file: path, byteOffset: keyOffset)
            }
        }
        guard isObject else {
            throw CheckpointError(.malformedHeader, "the header is not a JSON object", file: path, byteOffset: 8)
        }
        func at(_ entry: Entry) -> Int64 { entry.keyOffset }

        // Reference step 7: sorted by offsets, the tensors must tile the data buffer from 0 without gaps or overlaps.
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        for entry in entries {
            guard entry.begin == cursor, entry.end >= entry.begin else {
                let problem =
                    entry.end < entry.begin
                    ? "ends before it begins"
                    : entry.begin < cursor ? "overlaps the previous tensor" : "leaves a gap after the previous tensor"
                throw CheckpointError(
                    .malformedHeader,
                    "tensor '\(entry.name)' has data_offsets [\(entry.begin), \(entry.end)] and \(problem) (expected begin \(cursor)) (InvalidOffset)",
                    file: path, byteOffset: at(entry), tensor: entry.name)
            }
            cursor = entry.end
            guard let elements = entry.shape.checkedElementCount else {
                throw CheckpointError(
                    .limitExceeded,
                    "tensor '\(entry.name)': the element count of shape \(entry.shape) overflows (ValidationOverflow)",
                    file: path, byteOffset: at(entry), tensor: entry.name)
            }
            let (bits, overflow) = elements.multipliedReportingOverflow(by: entry.dtype.bitWidth)
            guard !overflow else {
                throw CheckpointError(
                    .limitExceeded,
                    "tensor '\(entry.name)': the bit count of shape \(entry.shape) × \(entry.dtype) overflows (ValidationOverflow)",
                    file: path, byteOffset: at(entry), tensor: entry.name)
            }
            guard bits % 8 == 0 else {
                throw CheckpointError(
                    .malformedHeader,
                    "tensor '\(entry.name)': \(elements) elements of \(entry.dtype) are not a whole number of bytes (MisalignedSlice)",
                    file: path, byteOffset: at(entry), tensor: entry.name)
            }
            guard entry.end - entry.begin == bits / 8 else {
                throw CheckpointError(
                    .malformedHeader,
                    "tensor '\(entry.name)': shape \(entry.shape) of \(entry.dtype) needs \(bits / 8) bytes but data_offsets span \(entry.end - entry.begin) (TensorInvalidInfo)",
                    file: path, byteOffset: at(entry), tensor: entry.name)
            }
        }
        let dataStart = 8 + Int(headerLength)
        let (expected, overflow) = dataStart.addingReportingOverflow(cursor)
        guard !overflow, expected == fileSize else {
            if overflow || expected > fileSize {
                // Name the first tensor that does not fit; its data is cut off at the end of the file.
                let available = fileSize - dataStart
                let cut = entries.first { $0.end > available }
                let what =
                    cut.map { "tensor '\($0.name)' has data_offsets [\($0.begin), \($0.end)], but" }
                    ?? "the tensors need \(cursor) bytes of data and"
                throw CheckpointError(
                    .truncated,
                    "\(what) the data buffer has only \(available) bytes (the file ends at byte \(fileSize)) (MetadataIncompleteBuffer)",
                    file: path, byteOffset: Int64(fileSize), tensor: cut?.name)
            }
            throw CheckpointError(
                .malformedHeader,
                "\(fileSize - expected) bytes follow the last tensor, which ends at byte \(expected) (MetadataIncompleteBuffer)",
                file: path, byteOffset: Int64(expected))
        }

        let tensors = entries.map { entry in
            Tensor(
                descriptor: TensorDescriptor(
                    name: entry.name, dtype: entry.dtype, shape: entry.shape, file: path,
                    fileOffset: Int64(dataStart + entry.begin), byteCount: entry.end - entry.begin),
                bytes: TensorBytes(region: region, range: (dataStart + entry.begin)..<(dataStart + entry.end)))
        }
        return Checkpoint(format: .safetensors, files: [path], tensors: tensors, metadata: metadata)
    }

    private static func entry(
        _ name: String, _ value: JSONValue, offset: Int64, path: String
    ) throws(CheckpointError) -> Entry {
        func at(_: String) -> Int64 { offset }
        func bad(_ message: String) -> CheckpointError {
            CheckpointError(
                .malformedHeader, "tensor '\(name)': \(message)", file: path, byteOffset: at(name), tensor: name)
        }
        guard case .object(let info) = value else { throw bad("the tensor info is not an object") }
        guard let dtypeValue = info["dtype"] else { throw bad("missing field 'dtype'") }
        guard case .string(let dtypeName) = dtypeValue else { throw bad("'dtype' is not a string") }
        guard let dtype = DType(safetensorsName: dtypeName) else {
            throw CheckpointError(
                .unsupportedDType, "tensor '\(name)': unknown dtype '\(dtypeName)'", file: path, byteOffset: at(name),
                tensor: name)
        }
        guard let shapeValue = info["shape"] else { throw bad("missing field 'shape'") }
        guard case .array(let dims) = shapeValue else { throw bad("'shape' is not an array") }
        var dimensions: [Int] = []
        dimensions.reserveCapacity(dims.count)
        for dim in dims {
            guard let d = dim.uint64Value else {
                throw bad("shape entry \(describe(dim)) is not a non-negative integer")
            }
            guard d <= UInt64(Int.max) else {
                throw CheckpointError(
                    .limitExceeded, "tensor '\(name)': shape entry \(d) is too large (ValidationOverflow)", file: path,
                    byteOffset: at(name), tensor: name)
            }
            dimensions.append(Int(d))
        }
        guard let offsetsValue = info["data_offsets"] else { throw bad("missing field 'data_offsets'") }
        guard case .array(let offsets) = offsetsValue, offsets.count == 2 else {
            throw bad("'data_offsets' must be an array of 2 integers")
        }
        guard let begin = offsets[0].uint64Value, let end = offsets[1].uint64Value else {
            throw bad("'data_offsets' entries must be non-negative integers")
        }
        guard begin <= UInt64(Int.max), end <= UInt64(Int.max) else {
            throw CheckpointError(
                .truncated, "tensor '\(name)': data_offsets [\(begin), \(end)] lie past the end of the file",
                file: path, byteOffset: at(name), tensor: name)
        }
        return Entry(
            name: name, dtype: dtype, shape: Shape(dimensions), begin: Int(begin), end: Int(end), keyOffset: offset)
    }

    private static func describe(_ value: JSONValue) -> String {
        JSONWriter.compact.string(value)
    }
}
