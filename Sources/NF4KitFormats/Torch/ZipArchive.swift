internal import CZlib
package import NF4KitCore

/// A read-only view of a zip archive held in a ``MappedRegion``, strict enough for untrusted checkpoints.
///
/// The central directory is authoritative; every local header is checked against it. Entry data are
/// handed out without copying when stored, and inflated into a heap region (under caps) when deflated.
/// See `docs/torch-bin.md` for the byte layouts and the reasons behind each check.
package struct ZipArchive {
    /// One file in the archive, as the central directory describes it.
    package struct Entry: Sendable {
        package var name: String
        /// 0 = stored, 8 = deflated.
        package var method: UInt16
        package var flags: UInt16
        package var crc32: UInt32
        package var compressedSize: Int
        package var uncompressedSize: Int
        package var localHeaderOffset: Int
        /// Where the entry's data starts in the file (after the local header).
        package var dataOffset: Int
        /// Offset of this entry's central-directory record (for error messages).
        package var centralOffset: Int
    }

    package let region: MappedRegion
    package let file: String
    /// Entries in central-directory order.
    package let entries: [Entry]
    /// The top-level folder shared by every entry (`archive`, `pytorch_model`, ...), without the slash.
    package let prefix: String
    private let index: [String: Int]
    private let limits: TorchReadLimits

    private static let eocdSignature: UInt32 = 0x0605_4B50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4B50
    private static let zip64EOCDSignature: UInt32 = 0x0606_4B50
    private static let centralSignature: UInt32 = 0x0201_4B50
    private static let localSignature: UInt32 = 0x0403_4B50
    /// Fixed sizes of the records (APPNOTE 6.3.10, sections 4.3.7, 4.3.12, 4.3.14, 4.3.15, 4.3.16).
    private static let eocdSize = 22
    private static let zip64LocatorSize = 20
    private static let zip64EOCDSize = 56
    private static let centralFixedSize = 46
    private static let localFixedSize = 30
    /// The EOCD comment length is a u16, so the record starts at most this far before the end.
    private static let maxEOCDSearch = 22 + 65_535

    /// Parses the archive's directory and checks every entry's local header.
    ///
    /// - Throws: ``CheckpointError`` `.truncated`, `.malformedHeader`, `.refused` or `.limitExceeded` naming
    ///   the entry and the byte offset.
    /// - Parameter budget: the file's allocation budget, charged for the directory before it is built.
    package init(
        region: MappedRegion, file: String, limits: TorchReadLimits, budget: inout AllocationBudget
    ) throws(CheckpointError) {
        self.region = region
        self.file = file
        self.limits = limits
        var parseBudget = budget
        let parsed: ([Entry], String) = try region.withUnsafeBytes { bytes throws(CheckpointError) in
            try Self.parse(bytes, file: file, limits: limits, budget: &parseBudget)
        }
        budget = parseBudget
        entries = parsed.0
        prefix = parsed.1
        var index: [String: Int] = [:]
        for (position, entry) in entries.enumerated() { index[entry.name] = position }
        self.index = index
    }

    /// The entry named `prefix + "/" + record`, or `nil`.
    package func entry(record: String) -> Entry? {
        index[prefix + "/" + record].map { entries[$0] }
    }

    /// The entry's uncompressed bytes: a view into the mapping for stored entries, a heap copy for deflated ones.
    ///
    /// The CRC-32 is checked when the central directory gives a non-zero one and ``TorchReadLimits/verifyCRC``
    /// is set (PyTorch writes 0 when its CRC setting is off).
    /// - Throws: ``CheckpointError`` `.malformedHeader` on a CRC mismatch or a corrupt deflate stream,
    ///   `.limitExceeded` when inflating would pass a cap, `.refused` when the stream's size disagrees.
    package func contents(
        of entry: Entry, inflatedSoFar: inout Int, budget: inout AllocationBudget
    ) throws(CheckpointError) -> TensorBytes {
        let data: TensorBytes
        switch entry.method {
        case 0:
            data = TensorBytes(region: region, range: entry.dataOffset..<(entry.dataOffset + entry.compressedSize))
        case 8:
            data = try inflate(entry, inflatedSoFar: &inflatedSoFar, budget: &budget)
        default:
            throw CheckpointError(
                .unsupported,
                "zip entry '\(entry.name)' uses compression method \(entry.method); only stored (0) "
                    + "and deflated (8) are read", file: file, byteOffset: Int64(entry.centralOffset))
        }
        if limits.verifyCRC && entry.crc32 != 0 {
            let actual = data.withUnsafeBytes { Self.crc32(of: $0) }
            guard actual == entry.crc32 else {
                throw CheckpointError(
                    .malformedHeader,
                    "zip entry '\(entry.name)' has CRC-32 \(hex(actual)) but the central directory says "
                        + hex(entry.crc32), file: file, byteOffset: Int64(entry.dataOffset))
            }
        }
        return data
    }

    // MARK: - Directory parsing

    private static func parse(
        _ bytes: UnsafeRawBufferPointer, file: String, limits: TorchReadLimits, budget: inout AllocationBudget
    ) throws(CheckpointError) -> ([Entry], String) {
        let size = bytes.count
        func fail(_ code: CheckpointError.Code, _ message: String, at offset: Int?) -> CheckpointError {
            CheckpointError(code, message, file: file, byteOffset: offset.map(Int64.init))
        }
        guard size >= eocdSize else {
            throw fail(.truncated, "the file is \(size) bytes, too short for a zip end-of-directory record", at: 0)
        }
        // 1. End of central directory: scan backwards over at most the comment range.
        var eocd = -1
        var candidate = size - eocdSize
        let lowest = max(0, size - maxEOCDSearch)
        while candidate >= lowest {
            if u32(bytes, candidate) == eocdSignature,
                candidate + eocdSize + Int(u16(bytes, candidate + 20)) == size
            {
                eocd = candidate
                break
            }
            candidate -= 1
        }
        guard eocd >= 0 else {
            throw fail(
                .truncated,
                "no zip end-of-central-directory record in the last \(min(size, maxEOCDSearch)) bytes; "
                    + "the archive is truncated or not a zip file", at: size)
        }
        let diskNumber = u16(bytes, eocd + 4)
        let cdDisk = u16(bytes, eocd + 6)
        var entryCount = UInt64(u16(bytes, eocd + 10))
        var cdSize = UInt64(u32(bytes, eocd + 12))
        var cdOffset = UInt64(u32(bytes, eocd + 16))
        var directoryEnd = eocd  // the central directory must end before this offset

        // 2. ZIP64 locator right before the classic record.
        let locator = eocd - zip64LocatorSize
        if locator >= 0, u32(bytes, locator) == zip64LocatorSignature {
            let eocd64Disk = u32(bytes, locator + 4)
            let eocd64Offset = u64(bytes, locator + 8)
            let totalDisks = u32(bytes, locator + 16)
            guard eocd64Disk == 0, totalDisks <= 1 else {
                throw fail(.unsupported, "multi-disk zip archives are not supported", at: locator)
            }
            guard locator >= zip64EOCDSize, eocd64Offset <= UInt64(locator - zip64EOCDSize) else {
                throw fail(
                    .malformedHeader,
                    "the ZIP64 locator points to offset \(eocd64Offset), which leaves no room for "
                        + "the 56-byte ZIP64 end record before the locator at \(locator)", at: locator)
            }
            let record = Int(eocd64Offset)
            guard u32(bytes, record) == zip64EOCDSignature else {
                throw fail(.malformedHeader, "no ZIP64 end-of-central-directory record at offset \(record)", at: record)
            }
            guard u32(bytes, record + 16) == 0, u32(bytes, record + 20) == 0 else {
                throw fail(.unsupported, "multi-disk zip archives are not supported", at: record)
            }
            let onDisk = u64(bytes, record + 24)
            entryCount = u64(bytes, record + 32)
            guard onDisk == entryCount else {
                throw fail(
                    .malformedHeader,
                    "the ZIP64 end record counts \(onDisk) entries on this disk but \(entryCount) "
                        + "in total", at: record)
            }
            // Classic fields that are not saturated must agree with the ZIP64 ones (two readers, one answer).
            let classic = (UInt64(u16(bytes, eocd + 10)), UInt64(u32(bytes, eocd + 12)), UInt64(u32(bytes, eocd + 16)))
            cdSize = u64(bytes, record + 40)
            cdOffset = u64(bytes, record + 48)
            guard classic.0 == 0xFFFF || classic.0 == entryCount, classic.1 == 0xFFFF_FFFF || classic.1 == cdSize,
                classic.2 == 0xFFFF_FFFF || classic.2 == cdOffset
            else {
                throw fail(
                    .refused,
                    "the ZIP64 and classic end records disagree about the central directory "
                        + "(entries \(entryCount)/\(classic.0), size \(cdSize)/\(classic.1), "
                        + "offset \(cdOffset)/\(classic.2))",
                    at: record)
            }
            directoryEnd = record
        } else {
            guard diskNumber == 0, cdDisk == 0, u16(bytes, eocd + 8) == u16(bytes, eocd + 10) else {
                throw fail(.unsupported, "multi-disk zip archives are not supported", at: eocd)
            }
            guard entryCount != 0xFFFF, cdSize != 0xFFFF_FFFF, cdOffset != 0xFFFF_FFFF else {
                throw fail(
                    .malformedHeader,
                    "the end-of-central-directory record has saturated fields but there is "
                        + "no ZIP64 locator", at: eocd)
            }
        }
        // 3. The central directory lies before the end records; counts are bounded by its size.
        guard cdOffset <= UInt64(directoryEnd), cdSize <= UInt64(directoryEnd) - cdOffset else {
            throw fail(
                .truncated,
                "the central directory (offset \(cdOffset), \(cdSize) bytes) does not fit before "
                    + "the end records at \(directoryEnd)", at: directoryEnd)
        }
        guard entryCount <= cdSize / UInt64(centralFixedSize) else {
            throw fail(
                .malformedHeader,
                "the archive declares \(entryCount) entries but its central directory has only "
                    + "\(cdSize) bytes (46 per entry at least)", at: directoryEnd)
        }
        guard entryCount <= UInt64(limits.maxZipEntries) else {
            throw fail(
                .limitExceeded,
                "the archive declares \(entryCount) entries, more than the limit of "
                    + "\(limits.maxZipEntries)", at: directoryEnd)
        }
        guard entryCount > 0 else { throw fail(.malformedHeader, "the zip archive has no entries", at: eocd) }

        // 4. Central directory entries.
        var entries: [Entry] = []
        entries.reserveCapacity(Int(entryCount))
        var seen = Set<String>()
        var position = Int(cdOffset)
        let cdEnd = Int(cdOffset + cdSize)
        for _ in 0..<Int(entryCount) {
            let start = position
            guard cdEnd - position >= centralFixedSize else {
                throw fail(.truncated, "central directory entry at \(start) runs past the directory's end", at: start)
            }
            guard u32(bytes, position) == centralSignature else {
                throw fail(.malformedHeader, "no central directory entry signature at offset \(start)", at: start)
            }
            let flags = u16(bytes, position + 8)
            let method = u16(bytes, position + 10)
            let crc = u32(bytes, position + 16)
            var compressed = UInt64(u32(bytes, position + 20))
            var uncompressed = UInt64(u32(bytes, position + 24))
            let nameLength = Int(u16(bytes, position + 28))
            let extraLength = Int(u16(bytes, position + 30))
            let commentLength = Int(u16(bytes, position + 32))
            let disk = u16(bytes, position + 34)
            var localOffset = UInt64(u32(bytes, position + 42))
            let variable = nameLength + extraLength + commentLength
            guard cdEnd - position - centralFixedSize >= variable else {
                throw fail(
                    .truncated,
                    "central directory entry at \(start) declares \(variable) bytes of name, extra and "
                        + "comment, past the directory's end", at: start)
            }
            let nameStart = position + centralFixedSize
            let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[nameStart..<(nameStart + nameLength)])
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw fail(.malformedHeader, "zip entry name at \(nameStart) is not valid UTF-8", at: nameStart)
            }
            // ZIP64 extra: the saturated fields appear in the order usize, csize, offset, disk.
            var extra = nameStart + nameLength
            let extraEnd = extra + extraLength
            while extraEnd - extra >= 4 {
                let id = u16(bytes, extra)
                let length = Int(u16(bytes, extra + 2))
                guard extraEnd - extra - 4 >= length else {
                    throw fail(.malformedHeader, "zip entry '\(name)' has an extra field that overruns", at: extra)
                }
                if id == 0x0001 {
                    var field = extra + 4
                    let fieldEnd = field + length
                    func next() throws(CheckpointError) -> UInt64 {
                        guard fieldEnd - field >= 8 else {
                            throw fail(.malformedHeader, "zip entry '\(name)' has a short ZIP64 extra field", at: field)
                        }
                        defer { field += 8 }
                        return u64(bytes, field)
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try next() }
                    if compressed == 0xFFFF_FFFF { compressed = try next() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try next() }
                }
                extra += 4 + length
            }
            position = start + centralFixedSize + variable
            let entryError = { (code: CheckpointError.Code, message: String) in
                fail(code, "zip entry '\(name)': \(message)", at: start)
            }
            guard disk == 0 else {
                throw entryError(.unsupported, "lives on disk \(disk); multi-disk is not supported")
            }
            guard flags & 0x0001 == 0, flags & 0x0040 == 0 else {
                throw entryError(.unsupported, "is encrypted")
            }
            guard method == 0 || method == 8 else {
                throw entryError(.unsupported, "uses compression method \(method); only stored (0) and deflated (8)")
            }
            guard isSafePath(name) else {
                throw entryError(.refused, "the path points outside the archive (absolute, '..', '\\' or empty part)")
            }
            guard seen.insert(name).inserted else { throw entryError(.refused, "appears twice in the archive") }
            guard compressed <= UInt64(size), uncompressed <= Int64.max.magnitude, localOffset <= UInt64(size) else {
                throw entryError(.truncated, "sizes or offset exceed the file size (\(size) bytes)")
            }
            if method == 0 && compressed != uncompressed {
                throw entryError(
                    .refused,
                    "is stored but its sizes disagree (compressed \(compressed), uncompressed \(uncompressed))")
            }
            // The entry, its name in `entries`, `seen` and the index, and the index's slot.
            try budget.charge(
                2 * MemoryLayout<Entry>.stride + 3 * AllocationBudget.stringByteCount(utf8Count: name.utf8.count) + 48,
                for: "the central directory entry '\(name)'", at: Int64(start))
            entries.append(
                Entry(
                    name: name, method: method, flags: flags, crc32: crc, compressedSize: Int(compressed),
                    uncompressedSize: Int(uncompressed), localHeaderOffset: Int(localOffset), dataOffset: 0,
                    centralOffset: start))
        }
        guard position == cdEnd else {
            throw fail(
                .malformedHeader,
                "the central directory has \(cdEnd - position) bytes left after its "
                    + "\(entryCount) entries", at: position)
        }

        // 5. Local headers: they must agree with the central directory, and data ranges must not overlap.
        for i in entries.indices {
            entries[i].dataOffset = try checkLocalHeader(entries[i], bytes, directoryStart: Int(cdOffset), file: file)
        }
        let sorted = entries.sorted { $0.localHeaderOffset < $1.localHeaderOffset }
        for (previous, next) in zip(sorted, sorted.dropFirst())
        where previous.dataOffset + previous.compressedSize > next.localHeaderOffset {
            throw fail(
                .refused, "zip entries '\(previous.name)' and '\(next.name)' overlap", at: next.localHeaderOffset)
        }

        // 6. One common prefix, taken from the first entry (as PyTorch's reader does).
        let first = entries[0].name
        guard let slash = first.firstIndex(of: "/") else {
            throw fail(
                .malformedHeader,
                "the first zip entry '\(first)' is not inside a folder; PyTorch archives keep "
                    + "every record under one top-level folder", at: entries[0].centralOffset)
        }
        let prefix = String(first[..<slash])
        for entry in entries where !entry.name.hasPrefix(prefix + "/") {
            throw fail(
                .refused, "zip entry '\(entry.name)' is outside the archive folder '\(prefix)/'",
                at: entry.centralOffset)
        }
        return (entries, prefix)
    }

    /// Checks the local header of `entry` and returns where its data starts.
    private static func checkLocalHeader(
        _ entry: Entry, _ bytes: UnsafeRawBufferPointer, directoryStart: Int, file: String
    ) throws(CheckpointError) -> Int {
        let offset = entry.localHeaderOffset
        func fail(_ code: CheckpointError.Code, _ message: String) -> CheckpointError {
            CheckpointError(code, "zip entry '\(entry.name)': \(message)", file: file, byteOffset: Int64(offset))
        }
        guard offset <= directoryStart, directoryStart - offset >= localFixedSize else {
            throw fail(.truncated, "local header at \(offset) does not fit before the central directory")
        }
        guard u32(bytes, offset) == localSignature else { throw fail(.malformedHeader, "no local header at \(offset)") }
        let flags = u16(bytes, offset + 6)
        let method = u16(bytes, offset + 8)
        let crc = u32(bytes, offset + 14)
        var compressed = UInt64(u32(bytes, offset + 18))
        var uncompressed = UInt64(u32(bytes, offset + 22))
        let nameLength = Int(u16(bytes, offset + 26))
        let extraLength = Int(u16(bytes, offset + 28))
        guard directoryStart - offset - localFixedSize >= nameLength + extraLength else {
            throw fail(.truncated, "local header name and extra run into the central directory")
        }
        let nameStart = offset + localFixedSize
        let localName = UnsafeRawBufferPointer(rebasing: bytes[nameStart..<(nameStart + nameLength)])
        guard localName.elementsEqual(entry.name.utf8) else {
            let shown = String(decoding: localName, as: UTF8.self)
            throw fail(.refused, "the local header names '\(shown)' but the central directory names it differently")
        }
        guard method == entry.method else {
            throw fail(.refused, "the local header says method \(method), the central directory \(entry.method)")
        }
        guard flags & 0x0001 == 0 else { throw fail(.unsupported, "is encrypted (local header)") }
        // Without a data descriptor (bit 3) the local sizes and CRC are real and must agree.
        if flags & 0x0008 == 0 {
            var extra = nameStart + nameLength
            let extraEnd = extra + extraLength
            while extraEnd - extra >= 4 {
                let id = u16(bytes, extra)
                let length = Int(u16(bytes, extra + 2))
                guard extraEnd - extra - 4 >= length else { break }
                if id == 0x0001 {
                    var field = extra + 4
                    let fieldEnd = field + length
                    if uncompressed == 0xFFFF_FFFF, fieldEnd - field >= 8 {
                        uncompressed = u64(bytes, field)
                        field += 8
                    }
                    if compressed == 0xFFFF_FFFF, fieldEnd - field >= 8 { compressed = u64(bytes, field) }
                }
                extra += 4 + length
            }
            guard compressed == UInt64(entry.compressedSize), uncompressed == UInt64(entry.uncompressedSize) else {
                throw fail(
                    .refused,
                    "sizes disagree: the local header says \(compressed)/\(uncompressed) bytes "
                        + "(compressed/uncompressed), the central directory \(entry.compressedSize)/"
                        + "\(entry.uncompressedSize)")
            }
            guard crc == entry.crc32 else {
                throw fail(.refused, "the local header CRC \(hex(crc)) disagrees with the central \(hex(entry.crc32))")
            }
        }
        let dataStart = nameStart + nameLength + extraLength
        guard entry.compressedSize <= directoryStart - dataStart else {
            throw fail(
                .truncated,
                "its \(entry.compressedSize) bytes of data at \(dataStart) run past the central "
                    + "directory at \(directoryStart)")
        }
        return dataStart
    }

    /// Whether `name` stays inside the archive: relative, no `..`, no backslashes, no empty or `.` parts.
    private static func isSafePath(_ name: String) -> Bool {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.contains("\\"), !name.utf8.contains(0) else { return false }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        return parts.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }

    // MARK: - Inflate

    private func inflate(
        _ entry: Entry, inflatedSoFar: inout Int, budget: inout AllocationBudget
    ) throws(CheckpointError) -> TensorBytes {
        let declared = entry.uncompressedSize
        func fail(_ code: CheckpointError.Code, _ message: String) -> CheckpointError {
            CheckpointError(
                code, "zip entry '\(entry.name)': \(message)", file: file, byteOffset: Int64(entry.dataOffset))
        }
        // Both caps are checked on the declared size before anything is allocated.
        if declared > limits.deflateRatioExemptBytes {
            let (allowed, overflow) = max(entry.compressedSize, 1).multipliedReportingOverflow(
                by: limits.maxDeflateRatio)
            guard overflow || declared <= allowed else {
                throw fail(
                    .limitExceeded,
                    "deflate bomb refused: \(entry.compressedSize) compressed bytes declare "
                        + "\(declared) uncompressed, a ratio above the limit of \(limits.maxDeflateRatio):1")
            }
        }
        guard declared <= limits.maxInflatedBytes - inflatedSoFar else {
            throw fail(
                .limitExceeded,
                "deflate bomb refused: inflating \(declared) bytes would bring the archive's "
                    + "inflated total past the limit of \(limits.maxInflatedBytes) bytes")
        }
        // The declared size is charged first; the stream may not inflate to more (checked while inflating).
        try budget.charge(
            declared, for: "inflating zip entry '\(entry.name)' (\(declared) bytes declared)",
            at: Int64(entry.dataOffset))
        let source = TensorBytes(region: region, range: entry.dataOffset..<(entry.dataOffset + entry.compressedSize))
        let output = try MappedRegion(filling: declared, description: "\(file) (inflated \(entry.name))") {
            (destination: UnsafeMutableRawBufferPointer) throws(CheckpointError) in
            try source.withUnsafeBytes { (input: UnsafeRawBufferPointer) throws(CheckpointError) in
                try Self.rawInflate(input, into: destination, fail: fail)
            }
        }
        inflatedSoFar += declared
        return output.all
    }

    /// Inflates a raw deflate stream into exactly `destination.count` bytes.
    private static func rawInflate(
        _ input: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer,
        fail: (CheckpointError.Code, String) -> CheckpointError
    ) throws(CheckpointError) {
        var stream = z_stream()
        guard nf4kit_inflateInit2(&stream, -15) == Z_OK else { throw fail(.io, "zlib could not start inflating") }
        defer { inflateEnd(&stream) }
        // zlib counts in uInt (32 bits): feed input and output in chunks below 4 GiB.
        let chunk = 1 << 30
        var inputUsed = 0
        var outputUsed = 0
        // A 1-byte scratch lets us detect output beyond the declared size without writing past the buffer.
        var overflowByte: UInt8 = 0
        while true {
            if stream.avail_in == 0 && inputUsed < input.count {
                let count = min(chunk, input.count - inputUsed)
                stream.next_in = UnsafeMutableRawPointer(mutating: input.baseAddress!.advanced(by: inputUsed))
                    .assumingMemoryBound(to: Bytef.self)
                stream.avail_in = uInt(count)
                inputUsed += count
            }
            var status: Int32 = Z_OK
            if outputUsed < destination.count {
                let count = min(chunk, destination.count - outputUsed)
                stream.next_out = destination.baseAddress!.advanced(by: outputUsed).assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(count)
                status = CZlib.inflate(&stream, Z_NO_FLUSH)
                outputUsed += count - Int(stream.avail_out)
            } else {
                status = withUnsafeMutablePointer(to: &overflowByte) { pointer in
                    stream.next_out = pointer
                    stream.avail_out = 1
                    return CZlib.inflate(&stream, Z_NO_FLUSH)
                }
                if stream.avail_out == 0 {
                    throw fail(
                        .refused,
                        "sizes disagree: the deflate stream inflates to more than the declared "
                            + "\(destination.count) bytes")
                }
            }
            switch status {
            case Z_STREAM_END:
                guard outputUsed == destination.count else {
                    throw fail(
                        .refused,
                        "sizes disagree: the deflate stream inflates to \(outputUsed) bytes, the "
                            + "directory declares \(destination.count)")
                }
                guard stream.avail_in == 0, inputUsed == input.count else {
                    throw fail(.refused, "sizes disagree: the deflate stream ends before its declared compressed size")
                }
                return
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                // No progress possible: the input ran out before the stream ended.
                if stream.avail_in == 0 && inputUsed == input.count {
                    throw fail(.truncated, "the deflate stream ends early (after \(outputUsed) bytes of output)")
                }
                continue
            default:
                let reason = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                throw fail(.malformedHeader, "corrupt deflate stream: \(reason)")
            }
        }
    }

    /// zlib's CRC-32 of `bytes`, fed in chunks below 4 GiB.
    package static func crc32(of bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CZlib.crc32(0, nil, 0)
        var offset = 0
        while offset < bytes.count {
            let count = min(1 << 30, bytes.count - offset)
            crc = CZlib.crc32(
                crc, bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: Bytef.self), uInt(count))
            offset += count
        }
        return UInt32(truncatingIfNeeded: crc)
    }
}

// MARK: - Little-endian loads (callers check bounds first)

@inline(__always) private func u16(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
    UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}
@inline(__always) private func u32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}
@inline(__always) private func u64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
    UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
}
private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
