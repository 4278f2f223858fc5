package import NF4KitCore

// A restricted pickle interpreter for `data.pkl`. It never imports or calls anything: GLOBAL only yields an
// inert tag from a fixed allow list, and REDUCE/NEWOBJ/BUILD only apply the handful of tags that describe a
// state dict. Values are reference types where pickle shares them (lists, dicts), and a container becomes
// read-only once it is placed inside another one, which rules out cycles and bounds the nesting depth.

/// A Python callable or class that a checkpoint may name, after the allow list accepted it.
package enum PickleGlobal: Equatable, Sendable {
    case orderedDict
    case rebuildTensor, rebuildTensorV2, rebuildTensorV3
    case rebuildParameter, rebuildParameterWithState, rebuildFromTypeV2
    case torchSize, torchDevice, codecsEncode, builtinsSet
    case tensorClass, parameterClass
    /// `torch.<dtype>`; `dtype` is `nil` for one we cannot convert (complex128, quantized, bits).
    case dtype(name: String, dtype: DType?)
    /// `torch.<X>Storage` or `torch.storage.UntypedStorage`; `dtype` `nil` for an unconvertible one.
    case storageType(name: String, dtype: DType?, isUntyped: Bool)

    /// The dotted Python name, for messages.
    package var qualifiedName: String {
        switch self {
        case .orderedDict: "collections.OrderedDict"
        case .rebuildTensor: "torch._utils._rebuild_tensor"
        case .rebuildTensorV2: "torch._utils._rebuild_tensor_v2"
        case .rebuildTensorV3: "torch._utils._rebuild_tensor_v3"
        case .rebuildParameter: "torch._utils._rebuild_parameter"
        case .rebuildParameterWithState: "torch._utils._rebuild_parameter_with_state"
        case .rebuildFromTypeV2: "torch._tensor._rebuild_from_type_v2"
        case .torchSize: "torch.Size"
        case .torchDevice: "torch.device"
        case .codecsEncode: "_codecs.encode"
        case .builtinsSet: "builtins.set"
        case .tensorClass: "torch.Tensor"
        case .parameterClass: "torch.nn.parameter.Parameter"
        case .dtype(let name, _): "torch.\(name)"
        case .storageType(let name, _, let untyped): untyped ? "torch.storage.\(name)" : "torch.\(name)"
        }
    }

    /// Storage class names (PyTorch's legacy typed storages) and the dtype each holds.
    private static let storageTypes: [String: DType?] = [
        "DoubleStorage": .f64, "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8, "ByteStorage": .u8,
        "BoolStorage": .bool, "ComplexFloatStorage": .c64, "ComplexDoubleStorage": nil, "QInt8Storage": nil,
        "QUInt8Storage": nil, "QInt32Storage": nil, "QUInt4x2Storage": nil, "QUInt2x4Storage": nil,
    ]
    /// dtype objects that are allow-listed as plain values but have no safetensors counterpart.
    private static let unconvertibleDTypes: Set<String> = [
        "complex128", "complex32", "cdouble", "chalf", "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
        "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2", "uint1", "uint2", "uint3", "uint4", "uint5", "uint6",
        "uint7", "int1", "int2", "int3", "int4", "int5", "int6", "int7",
    ]

    /// Resolves `module.name` against the allow list; `nil` means refused.
    package static func resolve(module rawModule: String, name: String) -> PickleGlobal? {
        // Python 2 module names that protocol 2 writes (pickle's _compat_pickle mapping, the part we need).
        let module =
            switch rawModule {
            case "__builtin__": "builtins"
            case "copy_reg": "copyreg"
            default: rawModule
            }
        switch (module, name) {
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch._utils", "_rebuild_tensor"): return .rebuildTensor
        case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
        case ("torch._utils", "_rebuild_tensor_v3"): return .rebuildTensorV3
        case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): return .rebuildParameterWithState
        case ("torch._tensor", "_rebuild_from_type_v2"): return .rebuildFromTypeV2
        case ("torch", "Size"): return .torchSize
        case ("torch", "device"): return .torchDevice
        case ("_codecs", "encode"): return .codecsEncode
        case ("builtins", "set"): return .builtinsSet
        case ("torch", "Tensor"): return .tensorClass
        case ("torch.nn.parameter", "Parameter"): return .parameterClass
        case ("torch.storage", "UntypedStorage"): return .storageType(name: name, dtype: .u8, isUntyped: true)
        case ("torch", _), ("torch.cuda", _):
            if let dtype = storageTypes[name] { return .storageType(name: name, dtype: dtype, isUntyped: false) }
            guard module == "torch" else { return nil }
            if unconvertibleDTypes.contains(name) { return .dtype(name: name, dtype: nil) }
            // Only canonical dtype names: pickle writes `torch float16`, never the alias `half`.
            if let dtype = DType(torchName: name), dtype.torchName == name { return .dtype(name: name, dtype: dtype) }
            return nil
        default:
            return nil
        }
    }
}

/// A reference to a storage record, as a persistent id names it.
package struct PickleStorageRef: Sendable {
    /// Record key: the bytes are in `<prefix>/data/<key>`.
    package var key: String
    package var type: PickleGlobal
    /// Element count for typed storages, byte count for `UntypedStorage`.
    package var elementCount: Int
    package var location: String
    /// Offset of the BINPERSID opcode in `data.pkl`.
    package var pickleOffset: Int
}

/// A tensor as a rebuild call describes it: storage, dtype, shape, strides and offset (in elements).
package struct PickleTensorRef: Sendable {
    package var storage: PickleStorageRef
    /// The tensor's dtype name (`float16`), and the dtype if we can hold it.
    package var dtypeName: String
    package var dtype: DType?
    package var storageOffset: Int
    package var shape: [Int]
    package var strides: [Int]
    /// Offset of the REDUCE opcode that built it in `data.pkl`.
    package var pickleOffset: Int
}

/// A list shared by reference, as pickle shares it.
package final class PickleList {
    package var items: [PickleValue] = []
    fileprivate var depth = 1
    fileprivate var isSealed = false
}

/// A dict (plain or `OrderedDict`) in insertion order, shared by reference.
package final class PickleDict {
    package private(set) var keys: [PickleValue] = []
    package private(set) var values: [PickleValue] = []
    package let isOrdered: Bool
    private var lookup: [PickleKey: Int] = [:]
    fileprivate var depth = 1
    fileprivate var isSealed = false

    init(isOrdered: Bool) { self.isOrdered = isOrdered }

    fileprivate func set(_ key: PickleKey, _ keyValue: PickleValue, _ value: PickleValue) {
        if let existing = lookup[key] {
            values[existing] = value  // Python keeps the first position and the last value
        } else {
            lookup[key] = keys.count
            keys.append(keyValue)
            values.append(value)
        }
    }

    /// The value for a string key.
    package subscript(key: String) -> PickleValue? { lookup[.string(key)].map { values[$0] } }
}

/// An immutable tuple with its nesting depth.
package final class PickleTuple {
    package let items: [PickleValue]
    fileprivate let depth: Int
    init(_ items: [PickleValue]) {
        self.items = items
        depth = 1 + (items.map(\.depth).max() ?? 0)
    }
}

/// A value on the pickle machine's stack.
// The large payloads are boxed (`indirect`), so a value is a few words: the memo and the stack hold millions of
// them in a hostile file (4 million memo entries took 1.7 GB with the structs stored inline).
package enum PickleValue {
    case none
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(PickleTuple)
    case list(PickleList)
    case dict(PickleDict)
    indirect case global(PickleGlobal)
    indirect case storage(PickleStorageRef)
    indirect case tensor(PickleTensorRef)

    fileprivate var depth: Int {
        switch self {
        case .tuple(let tuple): tuple.depth
        case .list(let list): list.depth
        case .dict(let dict): dict.depth
        default: 0
        }
    }

    /// Whether this is the very container `other` (a value placed into itself would make a cycle).
    fileprivate func isSameContainer(as other: AnyObject) -> Bool {
        switch self {
        case .list(let list): list === other
        case .dict(let dict): dict === other
        default: false
        }
    }

    /// Marks a container read-only because it is now inside another one.
    fileprivate func seal() {
        switch self {
        case .list(let list): list.isSealed = true
        case .dict(let dict): dict.isSealed = true
        default: break
        }
    }

    /// A short description of the kind, for messages.
    package var kind: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "str"
        case .bytes: "bytes"
        case .tuple: "tuple"
        case .list: "list"
        case .dict(let dict): dict.isOrdered ? "OrderedDict" : "dict"
        case .global(let global): "global '\(global.qualifiedName)'"
        case .storage: "storage"
        case .tensor: "tensor"
        }
    }
}

/// A hashable dict key (Python's `True == 1`, so bools key as ints).
private indirect enum PickleKey: Hashable {
    case none
    case int(Int64)
    case string(String)
    case bytes([UInt8])
    case double(Double)
    case tuple([PickleKey])

    init?(_ value: PickleValue) {
        switch value {
        case .none: self = .none
        case .bool(let flag): self = .int(flag ? 1 : 0)
        case .int(let number): self = .int(number)
        case .string(let text): self = .string(text)
        case .bytes(let data): self = .bytes(data)
        case .double(let number): self = .double(number)
        case .tuple(let tuple):
            var keys: [PickleKey] = []
            for item in tuple.items {
                guard let key = PickleKey(item) else { return nil }
                keys.append(key)
            }
            self = .tuple(keys)
        default: return nil
        }
    }
}

/// Runs a pickle stream with the restricted machine and returns the value STOP leaves.
package struct Unpickler {
    private let bytes: UnsafeRawBufferPointer
    private let file: String
    /// File offset of `bytes[0]`, when `data.pkl` is stored (not deflated) in the file.
    private let fileOffset: Int?
    private let limits: TorchReadLimits
    /// Legacy files: 6-item persistent ids, and more bytes follow each pickle's STOP.
    private let isLegacy: Bool
    private var position = 0
    private var opcodeStart = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [UInt32: PickleValue] = [:]
    /// What the values built may cost: the budget of the file the pickle comes from. Every value is charged when
    /// it is pushed and never given back (values move from the stack into containers), so the sum bounds what the
    /// stack, the memo, the containers and the strings hold at any time.
    package private(set) var budget: AllocationBudget

    /// Prepares to interpret `bytes` (the contents of `data.pkl`).
    ///
    /// - Parameter fileOffset: where `bytes` start in `file`, if they are stored there uncompressed.
    /// - Parameter isLegacy: read a legacy (pre-1.6) stream: persistent ids have a 6th item (`None`), and STOP
    ///   ends the pickle without ending `bytes` (see ``consumedByteCount``).
    /// - Parameter budget: the budget of the file `bytes` come from (by default one for `bytes` alone).
    package init(
        _ bytes: UnsafeRawBufferPointer, file: String, fileOffset: Int?, limits: TorchReadLimits,
        isLegacy: Bool = false, budget: AllocationBudget? = nil
    ) {
        self.bytes = bytes
        self.file = file
        self.fileOffset = fileOffset
        self.limits = limits
        self.isLegacy = isLegacy
        self.budget = budget ?? AllocationBudget(file: file, fileByteCount: bytes.count)
    }

    /// Bytes read so far (after ``run()``, the length of the pickle up to and including STOP).
    package var consumedByteCount: Int { position }

    private func error(_ code: CheckpointError.Code, _ message: String) -> CheckpointError {
        CheckpointError(
            code, "\(message) (data.pkl offset \(opcodeStart))", file: file,
            byteOffset: fileOffset.map { Int64($0 + opcodeStart) })
    }

    /// Interprets the whole stream.
    ///
    /// - Throws: ``CheckpointError`` `.refused` for a global or opcode outside the allow list (naming it),
    ///   `.limitExceeded` for stack, memo or nesting abuse, `.malformedHeader`/`.truncated` for a broken stream.
    package mutating func run() throws(CheckpointError) -> PickleValue {
        guard bytes.count <= limits.maxPickleBytes else {
            throw error(
                .limitExceeded, "data.pkl is \(bytes.count) bytes, more than the limit of \(limits.maxPickleBytes)")
        }
        while true {
            opcodeStart = position
            let opcode = try readByte("opcode")
            switch opcode {
            case 0x80:  // PROTO
                let version = try readByte("protocol version")
                guard version == 2 || version == 3 else {
                    throw error(
                        .unsupported,
                        "pickle protocol \(version) is not supported (torch.save writes protocol 2; "
                            + "PyTorch's weights-only loader rejects protocol 4 and 5 opcodes too)")
                }
            case 0x2E:  // STOP
                guard marks.isEmpty, stack.count == 1 else {
                    throw error(
                        .malformedHeader,
                        "STOP with \(stack.count) values and \(marks.count) open marks on the stack; "
                            + "expected exactly one value")
                }
                guard isLegacy || position == bytes.count else {
                    throw error(.malformedHeader, "\(bytes.count - position) bytes follow the STOP opcode")
                }
                return stack[0]
            case 0x63:  // GLOBAL
                let module = try readLine("GLOBAL module")
                let name = try readLine("GLOBAL name")
                guard let global = PickleGlobal.resolve(module: module, name: name) else {
                    throw error(.refused, "global '\(module).\(name)' is not allowed")
                }
                try push(.global(global))
            case 0x71: try memoize(UInt32(try readByte("BINPUT index")))  // BINPUT
            case 0x72: try memoize(try readInteger(UInt32.self, "LONG_BINPUT index"))  // LONG_BINPUT
            case 0x68: try recall(UInt32(try readByte("BINGET index")))  // BINGET
            case 0x6A: try recall(try readInteger(UInt32.self, "LONG_BINGET index"))  // LONG_BINGET
            case 0x28:  // MARK
                guard marks.count < limits.maxMarkDepth else {
                    throw error(.limitExceeded, "more than \(limits.maxMarkDepth) nested MARKs")
                }
                marks.append(stack.count)
            case 0x74: try push(try makeTuple(try popToMark()))  // TUPLE
            case 0x29: try push(.tuple(PickleTuple([])))  // EMPTY_TUPLE
            case 0x85, 0x86, 0x87:  // TUPLE1, TUPLE2, TUPLE3
                let count = Int(opcode - 0x84)
                var items: [PickleValue] = []
                for _ in 0..<count { items.append(try pop()) }
                try push(try makeTuple(items.reversed()))
            case 0x7D: try push(.dict(PickleDict(isOrdered: false)))  // EMPTY_DICT
            case 0x5D: try push(.list(PickleList()))  // EMPTY_LIST
            case 0x73:  // SETITEM
                let value = try pop()
                let key = try pop()
                try setItems(on: try top(), [key, value])
            case 0x75:  // SETITEMS
                let items = try popToMark()
                guard items.count % 2 == 0 else {
                    throw error(.malformedHeader, "SETITEMS with an odd number of items")
                }
                try setItems(on: try top(), items)
            case 0x61:  // APPEND
                let value = try pop()
                try append(to: try top(), [value])
            case 0x65:  // APPENDS
                let items = try popToMark()
                try append(to: try top(), items)
            case 0x52:  // REDUCE
                let arguments = try pop()
                let callable = try pop()
                try push(try reduce(callable, arguments))
            case 0x81:  // NEWOBJ
                let arguments = try pop()
                let cls = try pop()
                guard case .global(.parameterClass) = cls, case .tuple(let args) = arguments,
                    let first = args.items.first, case .tensor = first, args.items.count <= 2
                else {
                    throw error(.refused, "NEWOBJ on \(cls.kind) is not allowed (only torch.nn.Parameter(tensor))")
                }
                try push(first)
            case 0x62:  // BUILD
                _ = try pop()  // the state: only the `_metadata` attribute of a state dict, which we ignore
                let target = try top()
                guard case .dict(let dict) = target, dict.isOrdered else {
                    throw error(.refused, "BUILD on \(target.kind) is not allowed (only on an OrderedDict)")
                }
            case 0x51:  // BINPERSID
                try push(try persistentLoad(try pop()))
            case 0x58:  // BINUNICODE
                let length = try readInteger(UInt32.self, "BINUNICODE length")
                try push(.string(try readString(Int(length), "BINUNICODE")))
            case 0x55:  // SHORT_BINSTRING
                let length = try readByte("SHORT_BINSTRING length")
                try push(.string(try readString(Int(length), "SHORT_BINSTRING")))
            case 0x4B: try push(.int(Int64(try readByte("BININT1"))))  // BININT1
            case 0x4D: try push(.int(Int64(try readInteger(UInt16.self, "BININT2"))))  // BININT2
            case 0x4A: try push(.int(Int64(try readInteger(Int32.self, "BININT"))))  // BININT
            case 0x8A:  // LONG1
                let length = Int(try readByte("LONG1 length"))
                guard length <= 8 else {
                    throw error(.unsupported, "LONG1 integer of \(length) bytes does not fit in 64 bits")
                }
                let raw = try readBytes(length, "LONG1")
                var value: UInt64 = 0
                for (index, byte) in raw.enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
                if length > 0 && length < 8 && raw[length - 1] & 0x80 != 0 { value |= ~0 << (8 * UInt64(length)) }
                try push(.int(Int64(bitPattern: value)))
            case 0x88: try push(.bool(true))  // NEWTRUE
            case 0x89: try push(.bool(false))  // NEWFALSE
            case 0x4E: try push(.none)  // NONE
            case 0x47:  // BINFLOAT (big-endian)
                let bits = UInt64(bigEndian: try readInteger(UInt64.self, "BINFLOAT").littleEndian)
                try push(.double(Double(bitPattern: bits)))
            default:
                let name = Self.opcodeNames[opcode].map { " (\($0))" } ?? ""
                throw error(
                    .refused, "pickle opcode 0x\(String(opcode, radix: 16, uppercase: true))\(name) is not allowed")
            }
        }
    }

    /// Names of opcodes we refuse, so the message says what was found.
    private static let opcodeNames: [UInt8: String] = [
        0x69: "INST", 0x6F: "OBJ", 0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME", 0x8C: "SHORT_BINUNICODE",
        0x50: "PERSID", 0x70: "PUT", 0x67: "GET", 0x64: "DICT", 0x6C: "LIST", 0x30: "POP", 0x31: "POP_MARK",
        0x32: "DUP", 0x92: "NEWOBJ_EX", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x49: "INT", 0x4C: "LONG",
        0x53: "STRING", 0x56: "UNICODE", 0x46: "FLOAT", 0x8B: "LONG4", 0x54: "BINSTRING", 0x42: "BINBYTES",
        0x43: "SHORT_BINBYTES", 0x8E: "BINBYTES8", 0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
        0x8F: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET", 0x8D: "BINUNICODE8",
    ]

    // MARK: Stack and memo

    /// Charges `byteCount` for `what` at the current opcode.
    private mutating func charge(_ byteCount: Int, _ what: @autoclosure () -> String) throws(CheckpointError) {
        do throws(CheckpointError) {
            try budget.charge(byteCount, for: what(), at: Int64((fileOffset ?? 0) + opcodeStart))
        } catch {
            throw self.error(.limitExceeded, error.message)
        }
    }

    /// What a value costs beyond its slot: its box or object and, for a string, the characters.
    private static func heapByteCount(_ value: PickleValue) -> Int {
        switch value {
        case .none, .bool, .int, .double: 0
        case .string(let text): AllocationBudget.stringByteCount(utf8Count: text.utf8.count)
        case .bytes(let data): AllocationBudget.arrayByteCount(count: data.count, stride: 1)
        case .tuple(let tuple): 48 + AllocationBudget.arrayByteCount(count: tuple.items.count, stride: slotByteCount)
        case .list, .dict: 128
        case .global, .storage, .tensor: 192
        }
    }

    /// A value's slot in the stack, a container or the memo (a container keeps the value, the stack's slot goes).
    private static let slotByteCount = MemoryLayout<PickleValue>.stride

    private mutating func push(_ value: PickleValue) throws(CheckpointError) {
        guard stack.count < limits.maxStackCount else {
            throw error(.limitExceeded, "the pickle stack grows past the limit of \(limits.maxStackCount) values")
        }
        try charge(2 * Self.slotByteCount + Self.heapByteCount(value), "the pickle's \(value.kind) values")
        stack.append(value)
    }

    private mutating func pop() throws(CheckpointError) -> PickleValue {
        guard stack.count > (marks.last ?? 0) else { throw error(.malformedHeader, "pickle stack underflow") }
        return stack.removeLast()
    }

    private func top() throws(CheckpointError) -> PickleValue {
        guard stack.count > (marks.last ?? 0), let last = stack.last else {
            throw error(.malformedHeader, "pickle stack underflow")
        }
        return last
    }

    private mutating func popToMark() throws(CheckpointError) -> [PickleValue] {
        guard let mark = marks.popLast() else { throw error(.malformedHeader, "no MARK to pop to") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private mutating func memoize(_ index: UInt32) throws(CheckpointError) {
        let value = try top()
        if memo[index] == nil {
            guard memo.count < limits.maxMemoCount else {
                throw error(.limitExceeded, "more than \(limits.maxMemoCount) memo entries")
            }
            // Key and value in a hash table kept at most three quarters full.
            try charge(2 * (8 + Self.slotByteCount), "the pickle's memo entries")
        }
        memo[index] = value
    }

    private mutating func recall(_ index: UInt32) throws(CheckpointError) {
        guard let value = memo[index] else { throw error(.malformedHeader, "memo entry \(index) was never stored") }
        try push(value)
    }

    // MARK: Containers

    private func checkNesting(_ depth: Int) throws(CheckpointError) {
        guard depth <= limits.maxNestingDepth else {
            throw error(.limitExceeded, "values nest deeper than the limit of \(limits.maxNestingDepth)")
        }
    }

    private func makeTuple(_ items: some Sequence<PickleValue>) throws(CheckpointError) -> PickleValue {
        let tuple = PickleTuple(Array(items))
        try checkNesting(tuple.depth)
        for item in tuple.items { item.seal() }
        return .tuple(tuple)
    }

    private func setItems(on target: PickleValue, _ items: [PickleValue]) throws(CheckpointError) {
        guard case .dict(let dict) = target else {
            throw error(.refused, "SETITEM(S) on \(target.kind) is not allowed (only on a dict)")
        }
        guard !dict.isSealed else {
            throw error(.refused, "SETITEM(S) on a dict that is already inside another value (cycles are not allowed)")
        }
        var index = 0
        while index < items.count {
            let keyValue = items[index]
            let value = items[index + 1]
            guard let key = PickleKey(keyValue) else {
                throw error(.malformedHeader, "a \(keyValue.kind) cannot be a dict key")
            }
            guard !value.isSameContainer(as: dict) else {
                throw error(.refused, "SETITEM(S) puts a dict into itself (cycles are not allowed)")
            }
            try checkNesting(value.depth + 1)
            value.seal()
            dict.depth = max(dict.depth, value.depth + 1)
            dict.set(key, keyValue, value)
            index += 2
        }
    }

    private func append(to target: PickleValue, _ items: [PickleValue]) throws(CheckpointError) {
        guard case .list(let list) = target else {
            throw error(.refused, "APPEND(S) on \(target.kind) is not allowed (only on a list)")
        }
        guard !list.isSealed else {
            throw error(.refused, "APPEND(S) on a list that is already inside another value (cycles are not allowed)")
        }
        for item in items {
            guard !item.isSameContainer(as: list) else {
                throw error(.refused, "APPEND(S) puts a list into itself (cycles are not allowed)")
            }
            try checkNesting(item.depth + 1)
            item.seal()
            list.depth = max(list.depth, item.depth + 1)
            list.items.append(item)
        }
    }

    // MARK: Calls

    private func reduce(_ callable: PickleValue, _ arguments: PickleValue) throws(CheckpointError) -> PickleValue {
        guard case .global(let global) = callable else {
            throw error(.refused, "REDUCE on \(callable.kind) is not allowed")
        }
        guard case .tuple(let tuple) = arguments else {
            throw error(.malformedHeader, "REDUCE of '\(global.qualifiedName)' with \(arguments.kind) arguments")
        }
        return try call(global, tuple.items)
    }

    private func call(_ global: PickleGlobal, _ args: [PickleValue]) throws(CheckpointError) -> PickleValue {
        let name = global.qualifiedName
        func bad(_ what: String) -> CheckpointError {
            error(
                .malformedHeader,
                "'\(name)' called with \(args.count) arguments (\(args.map(\.kind).joined(separator: ", "))); \(what)")
        }
        switch global {
        case .orderedDict:
            let dict = PickleDict(isOrdered: true)
            if args.isEmpty { return .dict(dict) }
            guard args.count == 1, case .list(let pairs) = args[0] else { throw bad("expected () or a list of pairs") }
            for pair in pairs.items {
                guard case .tuple(let item) = pair, item.items.count == 2, let key = PickleKey(item.items[0]) else {
                    throw bad("expected (key, value) pairs")
                }
                dict.depth = max(dict.depth, item.items[1].depth + 1)
                dict.set(key, item.items[0], item.items[1])
            }
            return .dict(dict)
        case .rebuildTensor, .rebuildTensorV2, .rebuildTensorV3:
            return .tensor(try rebuildTensor(global, args))
        case .rebuildParameter, .rebuildParameterWithState:
            guard args.count == (global == .rebuildParameter ? 3 : 4), case .tensor = args[0] else {
                throw bad("expected (tensor, requires_grad, hooks\(global == .rebuildParameter ? "" : ", state"))")
            }
            return args[0]
        case .rebuildFromTypeV2:
            guard args.count == 4, case .global(let function) = args[0], case .global(let cls) = args[1],
                case .tuple(let inner) = args[2]
            else { throw bad("expected (function, type, args, state)") }
            guard cls == .tensorClass || cls == .parameterClass else {
                throw error(.refused, "'\(name)' to build a '\(cls.qualifiedName)' is not allowed")
            }
            switch function {
            case .rebuildTensor, .rebuildTensorV2, .rebuildTensorV3, .rebuildParameter, .rebuildParameterWithState:
                return try call(function, inner.items)
            default:
                throw error(.refused, "'\(name)' calling '\(function.qualifiedName)' is not allowed")
            }
        case .torchSize:
            guard args.count == 1, case .tuple = args[0] else { throw bad("expected one tuple") }
            return args[0]
        case .torchDevice:
            guard (1...2).contains(args.count), case .string = args[0] else { throw bad("expected (str[, int])") }
            return args[0]
        case .codecsEncode:
            guard args.count == 2, case .string(let text) = args[0], case .string(let encoding) = args[1],
                encoding == "latin1" || encoding == "latin-1"
            else { throw bad("expected (str, 'latin1')") }
            var data: [UInt8] = []
            for scalar in text.unicodeScalars {
                guard scalar.value <= 0xFF else { throw bad("a code point above 255 cannot be latin-1") }
                data.append(UInt8(scalar.value))
            }
            return .bytes(data)
        case .builtinsSet:
            guard args.count == 1, case .list = args[0] else { throw bad("expected one list") }
            return args[0]
        case .tensorClass, .parameterClass, .dtype, .storageType:
            throw error(.refused, "calling '\(name)' is not allowed")
        }
    }

    private func rebuildTensor(_ global: PickleGlobal, _ args: [PickleValue]) throws(CheckpointError) -> PickleTensorRef
    {
        let name = global.qualifiedName
        let (minimum, maximum) =
            switch global {
            case .rebuildTensor: (4, 4)
            case .rebuildTensorV2: (6, 7)
            default: (7, 8)
            }
        guard (minimum...maximum).contains(args.count) else {
            throw error(
                .malformedHeader, "'\(name)' called with \(args.count) arguments, expected \(minimum)...\(maximum)")
        }
        guard case .storage(let storage) = args[0] else {
            throw error(.malformedHeader, "'\(name)' expects a storage as its first argument, found \(args[0].kind)")
        }
        let offset = try nonNegative(args[1], "storage offset")
        let shape = try integers(args[2], "size")
        let strides = try integers(args[3], "stride")
        guard shape.count == strides.count else {
            throw error(
                .malformedHeader, "'\(name)': size has \(shape.count) dimensions but stride has \(strides.count)")
        }
        var metadataIndex: Int? = nil
        var dtypeName: String
        var dtype: DType?
        guard case .storageType(let storageName, let storageDType, let untyped) = storage.type else {
            throw error(.malformedHeader, "persistent id names \(storage.type.qualifiedName), not a storage type")
        }
        if global == .rebuildTensorV3 {
            guard untyped else {
                throw error(.malformedHeader, "'\(name)' expects an UntypedStorage, found \(storageName)")
            }
            guard case .global(.dtype(let nameOfDType, let resolved)) = args[6] else {
                throw error(.malformedHeader, "'\(name)' expects a dtype as its 7th argument, found \(args[6].kind)")
            }
            dtypeName = nameOfDType
            dtype = resolved
            if args.count == 8 { metadataIndex = 7 }
        } else {
            guard !untyped else {
                throw error(.malformedHeader, "'\(name)' cannot take an UntypedStorage (only _rebuild_tensor_v3 can)")
            }
            dtypeName = storageName
            dtype = storageDType
            if args.count == 7 { metadataIndex = 6 }
        }
        if let metadataIndex {
            guard case .dict(let metadata) = args[metadataIndex] else {
                throw error(.malformedHeader, "'\(name)' metadata is \(args[metadataIndex].kind), not a dict")
            }
            for key in ["conj", "neg"] {
                if case .bool(true) = metadata[key] ?? .bool(false) {
                    throw error(.unsupported, "a tensor saved as a lazy '\(key)' view is not supported")
                }
            }
        }
        return PickleTensorRef(
            storage: storage, dtypeName: dtypeName, dtype: dtype, storageOffset: offset, shape: shape,
            strides: strides, pickleOffset: opcodeStart)
    }

    private func persistentLoad(_ id: PickleValue) throws(CheckpointError) -> PickleValue {
        if isLegacy, case .tuple(let tuple) = id, tuple.items.count == 6 {
            // Legacy ids end with view metadata: `None`, or (view key, offset, size) in files older than 0.4.
            guard case .none = tuple.items[5] else {
                throw error(.unsupported, "a legacy storage view (persistent id view metadata) is not supported")
            }
            return try persistentLoad(.tuple(PickleTuple(Array(tuple.items.prefix(5)))))
        }
        guard case .tuple(let tuple) = id, tuple.items.count == 5,
            case .string("storage") = tuple.items[0], case .global(let type) = tuple.items[1],
            case .string(let key) = tuple.items[2], case .string(let location) = tuple.items[3],
            case .storageType = type
        else {
            throw error(
                .refused, "persistent id must be ('storage', <storage type>, key, location, numel), found \(id.kind)")
        }
        let count = try nonNegative(tuple.items[4], "storage numel")
        return .storage(
            PickleStorageRef(key: key, type: type, elementCount: count, location: location, pickleOffset: opcodeStart))
    }

    private func nonNegative(_ value: PickleValue, _ what: String) throws(CheckpointError) -> Int {
        guard case .int(let number) = value, number >= 0, let result = Int(exactly: number) else {
            throw error(.malformedHeader, "\(what) must be a non-negative integer, found \(value.kind)")
        }
        return result
    }

    private func integers(_ value: PickleValue, _ what: String) throws(CheckpointError) -> [Int] {
        guard case .tuple(let tuple) = value else {
            throw error(.malformedHeader, "\(what) must be a tuple of integers, found \(value.kind)")
        }
        var result: [Int] = []
        for item in tuple.items { result.append(try nonNegative(item, what)) }
        return result
    }

    // MARK: Reading

    private mutating func readByte(_ what: String) throws(CheckpointError) -> UInt8 {
        guard position < bytes.count else {
            throw error(.truncated, "data.pkl ends inside \(what); the pickle has no STOP")
        }
        defer { position += 1 }
        return bytes[position]
    }

    private mutating func readInteger<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws(CheckpointError) -> T
    {
        guard bytes.count - position >= MemoryLayout<T>.size else {
            throw error(.truncated, "data.pkl ends inside \(what)")
        }
        defer { position += MemoryLayout<T>.size }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
    }

    private mutating func readBytes(_ count: Int, _ what: String) throws(CheckpointError) -> UnsafeRawBufferPointer {
        guard count <= bytes.count - position else {
            throw error(.truncated, "\(what) declares \(count) bytes but only \(bytes.count - position) remain")
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
    }

    private mutating func readString(_ count: Int, _ what: String) throws(CheckpointError) -> String {
        let raw = try readBytes(count, what)
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw error(.malformedHeader, "\(what) is not valid UTF-8")
        }
        return text
    }

    /// A GLOBAL argument line: printable ASCII up to a newline, at most 256 bytes.
    private mutating func readLine(_ what: String) throws(CheckpointError) -> String {
        let start = position
        while position < bytes.count, position - start <= 256 {
            let byte = bytes[position]
            if byte == 0x0A {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                position += 1
                return text
            }
            guard byte >= 0x20, byte < 0x7F else { throw error(.malformedHeader, "\(what) has a non-ASCII byte") }
            position += 1
        }
        if position == bytes.count { throw error(.truncated, "data.pkl ends inside opcode \(what)") }
        throw error(.malformedHeader, "\(what) has no newline within 256 bytes")
    }
}
