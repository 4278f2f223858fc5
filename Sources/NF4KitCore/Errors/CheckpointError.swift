/// An error reading, validating or writing a checkpoint, with the place it happened.
///
/// Every error names what it can of: the file, the byte offset in that file where the problem starts, and
/// the tensor. ``description`` puts them in front of the message:
/// `model.safetensors, byte 8: tensor 'lm_head.weight' ends at 9437312, past the end of the data (9437000 bytes)`.
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; decides the exit code of the command-line tool.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Storage: String, Hashable, Sendable {
            case truncated, malformedHeader, unsupportedDType, limitExceeded, io, invalidArgument, shapeMismatch
            case unsupported, refused, outputExists, nonFinite, notFound, internalInconsistency
        }
        private let storage: Storage
        private init(_ storage: Storage) { self.storage = storage }

        /// The file ends before a structure it declares.
        public static var truncated: Code { Code(.truncated) }
        /// A header, index or structure is not what the format allows.
        public static var malformedHeader: Code { Code(.malformedHeader) }
        /// A dtype or tensor type we do not know or cannot handle here.
        public static var unsupportedDType: Code { Code(.unsupportedDType) }
        /// A size or count exceeds a documented limit.
        public static var limitExceeded: Code { Code(.limitExceeded) }
        /// The operating system refused a read or write.
        public static var io: Code { Code(.io) }
        /// The caller asked for something that cannot be done with these inputs.
        public static var invalidArgument: Code { Code(.invalidArgument) }
        /// Two tensors that must agree in shape do not.
        public static var shapeMismatch: Code { Code(.shapeMismatch) }
        /// Valid input using a feature we do not implement.
        public static var unsupported: Code { Code(.unsupported) }
        /// Input refused on purpose (for instance a pickle global outside the allow list).
        public static var refused: Code { Code(.refused) }
        /// The output exists and overwriting was not allowed.
        public static var outputExists: Code { Code(.outputExists) }
        /// A computed value is NaN or infinite.
        public static var nonFinite: Code { Code(.nonFinite) }
        /// A file or tensor that was asked for does not exist.
        public static var notFound: Code { Code(.notFound) }
        /// Two of nf4kit's own computations disagree: a bug in nf4kit, not a problem with the input (exit code 1).
        public static var internalInconsistency: Code { Code(.internalInconsistency) }

        public var description: String { storage.rawValue }

        /// Whether the error means an input file is malformed or hostile (exit code 65).
        public var isDataError: Bool {
            switch storage {
            case .truncated, .malformedHeader, .unsupportedDType, .limitExceeded, .refused, .shapeMismatch,
                .unsupported:
                true
            default: false
            }
        }
    }

    public var code: Code
    /// A complete sentence that names the tensor and the numbers.
    public var message: String
    public var file: String?
    /// Where in ``file`` the problem starts.
    public var byteOffset: Int64?
    public var tensor: String?
    public var underlying: (any Error & Sendable)?

    public init(
        _ code: Code, _ message: String, file: String? = nil, byteOffset: Int64? = nil, tensor: String? = nil,
        underlying: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.file = file
        self.byteOffset = byteOffset
        self.tensor = tensor
        self.underlying = underlying
    }

    public var description: String {
        let place = [file, byteOffset.map { "byte \($0)" }].compactMap { $0 }.joined(separator: ", ")
        return place.isEmpty ? message : "\(place): \(message)"
    }

    /// The same error with `file` filled in when it was not known where it was thrown.
    public func inFile(_ file: String) -> CheckpointError {
        var copy = self
        if copy.file == nil { copy.file = file }
        return copy
    }
}
