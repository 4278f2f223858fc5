/// The memory one input file may make a reader allocate: a small multiple of the file's size plus a constant.
///
/// Every reader creates one budget per input file and charges it *before* each allocation whose size comes from
/// the file's contents (a table of tensors, metadata values, pickle values, inflated zip entries, JSON values,
/// vocabulary entries). Once the charges exceed ``limit`` the file is refused with a `.limitExceeded`
/// ``CheckpointError`` (exit 65) naming the file, the byte offset and what was being allocated, so a small crafted
/// file can never make a reader allocate far more than it holds. Memory that is only a view of the file (mapped
/// tensor data) is not charged. Transient memory freed before the read ends is given back with ``release(_:)``.
public struct AllocationBudget: Sendable {
    /// How many times its own size a file may make a reader allocate.
    public static let sizeFactor = 8
    /// What every file may allocate on top of ``sizeFactor`` times its size (fixed overheads, small files).
    public static let constantByteCount = 16 << 20

    /// The file named in errors.
    public let file: String?
    /// The size the limit was computed from.
    public let fileByteCount: Int
    /// The most that may be charged: ``sizeFactor`` × ``fileByteCount`` + ``constantByteCount``.
    public let limit: Int
    /// What has been charged and not released.
    public private(set) var charged = 0

    /// A budget for an input file of `fileByteCount` bytes named `file`.
    public init(file: String?, fileByteCount: Int) {
        self.file = file
        self.fileByteCount = max(0, fileByteCount)
        let (scaled, overflow) = self.fileByteCount.multipliedReportingOverflow(by: Self.sizeFactor)
        let (sum, overflow2) = scaled.addingReportingOverflow(Self.constantByteCount)
        limit = overflow || overflow2 ? Int.max : sum
    }

    /// Charges `byteCount` bytes for `what`, read at `byteOffset` of the file, before they are allocated.
    ///
    /// - Throws: `.limitExceeded` naming the file, the offset and `what` once the charges would exceed ``limit``
    ///   (the charge is then not recorded).
    public mutating func charge(
        _ byteCount: Int, for what: @autoclosure () -> String, at byteOffset: Int64
    ) throws(CheckpointError) {
        let (total, overflow) = charged.addingReportingOverflow(max(0, byteCount))
        guard !overflow, total <= limit else {
            throw CheckpointError(
                .limitExceeded,
                "\(what()) would take the memory this file may use past its budget of \(limit) bytes "
                    + "(\(Self.sizeFactor) × its \(fileByteCount) bytes + \(Self.constantByteCount >> 20) MiB; "
                    + "\(charged) already charged, \(byteCount) more asked); refused",
                file: file, byteOffset: byteOffset)
        }
        charged = total
    }

    /// Gives back `byteCount` bytes charged earlier whose memory has been freed.
    public mutating func release(_ byteCount: Int) {
        charged = max(0, charged - max(0, byteCount))
    }

    /// What a `String` of `utf8Count` bytes costs beyond its inline 16 bytes (small strings are stored inline).
    public static func stringByteCount(utf8Count: Int) -> Int {
        utf8Count <= 15 ? 0 : utf8Count + 32
    }

    /// What an array of `count` elements of `stride` bytes costs on the heap (storage header included).
    public static func arrayByteCount(count: Int, stride: Int) -> Int {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: stride)
        return overflow || bytes > Int.max - 32 ? Int.max : bytes + 32
    }
}
