package import NF4KitCore

/// A `rank_pattern` / `alpha_pattern` key compiled once into a matcher that runs in bounded time.
///
/// PEFT (>= 0.14) selects a module with Python's `re.match(rf"(.*\.)?({key})$", name)`. Keys come from an
/// untrusted file, and a backtracking engine can take exponential time on a short key (`(a*)*b`), so the key is
/// parsed here (Python's syntax) and run as a Thompson NFA over Unicode scalars (Python matches code points):
/// the time is O(name length × program size), and the program size is capped. Constructs whose result a set
/// simulation cannot decide (back-references, look-around, atomic groups, possessive quantifiers, conditionals,
/// inline flags) are refused with a message instead of being matched differently from PEFT.
///
/// A key that is a plain dotted name (the common case: literals and `.`) skips the NFA: it can only match the
/// last characters of the name, which is checked directly.
package struct ModulePattern: Sendable, Hashable {
    /// The key as written in the file.
    package let key: String
    private let program: [Instruction]
    /// Single-character tests of a key without operators, anchors or groups (`nil` otherwise).
    private let fixedSequence: [CharacterTest]?

    /// The largest compiled program accepted (counted repetitions are expanded).
    static let instructionLimit = 5_000
    /// The most NFA states all keys of one config may compile to together (keys on the fast path do not count):
    /// matching costs modules x name length x states, and memory grows with the total.
    package static let totalInstructionLimit = 50_000

    /// NFA states of this key (0 for a plain dotted key, which is matched without the NFA).
    package var instructionCount: Int { fixedSequence == nil ? program.count : 0 }

    /// Compiles `key`.
    ///
    /// - Throws: ``CheckpointError`` `.malformedHeader` for a key that is not a valid Python regular expression,
    ///   `.unsupported` for a construct this matcher does not implement or a key that compiles too large.
    package init(_ key: String, file: String? = nil) throws(CheckpointError) {
        self.key = key
        var parser = Parser(Array(key.unicodeScalars), key: key, file: file)
        let node = try parser.parseAll()
        fixedSequence = node.fixedSequence
        var builder = ProgramBuilder(key: key, file: file)
        // (?:.*\.)?  then the key, then `$`.
        let prefix = Node.repeated(
            .concatenation([.repeated(.character(.anyButNewline), min: 0, max: nil), .character(.literal(0x2E))]),
            min: 0, max: 1)
        try builder.emit(.concatenation([prefix, .group(node), .assertion(.endOrFinalNewline)]))
        try builder.append(.match)
        program = builder.program
    }

    /// Whether the key selects the module path `name` (PEFT's `re.match(rf"(.*\.)?({key})$", name)`).
    package func matches(_ name: String) -> Bool { matches(scalars: Array(name.unicodeScalars)) }

    /// ``matches(_:)`` on a name already split into scalars (callers matching many keys split it once).
    func matches(scalars: [Unicode.Scalar]) -> Bool {
        if let fixedSequence { return Self.matchesFixed(fixedSequence, scalars) }
        return run(scalars)
    }

    /// The fast path: the key matches the last scalars of the name (or those before a final newline, which `$`
    /// allows), and what precedes them is empty or ends with a dot and holds no newline (`.*` stops at one).
    private static func matchesFixed(_ tests: [CharacterTest], _ name: [Unicode.Scalar]) -> Bool {
        func fits(end: Int) -> Bool {
            let start = end - tests.count
            guard start >= 0 else { return false }
            for i in 0..<tests.count where !tests[i].accepts(name[start + i]) { return false }
            if start == 0 { return true }
            guard name[start - 1] == "." else { return false }
            return !name[0..<(start - 1)].contains("\n")
        }
        if fits(end: name.count) { return true }
        return name.last == "\n" && fits(end: name.count - 1)
    }

    /// Pike-VM simulation: every thread advances one scalar at a time; no state is visited twice per step.
    private func run(_ input: [Unicode.Scalar]) -> Bool {
        var current: [Int] = []
        var next: [Int] = []
        var seen = [Int](repeating: -1, count: program.count)
        current.reserveCapacity(program.count)
        next.reserveCapacity(program.count)

        // Follows jumps, splits and assertions from `pc` at `position`; returns true when `match` is reached.
        func add(_ pc: Int, _ position: Int, into list: inout [Int], _ stamp: Int) -> Bool {
            var stack = [pc]
            var matched = false
            while let pc = stack.popLast() {
                guard seen[pc] != stamp else { continue }
                seen[pc] = stamp
                switch program[pc] {
                case .match: matched = true
                case .jump(let target): stack.append(target)
                case .split(let first, let second):
                    stack.append(second)
                    stack.append(first)
                case .assert(let assertion):
                    if assertion.holds(at: position, in: input) { stack.append(pc + 1) }
                case .character: list.append(pc)
                }
            }
            return matched
        }

        if add(0, 0, into: &current, 0) { return true }
        var position = 0
        while position < input.count, !current.isEmpty {
            let scalar = input[position]
            next.removeAll(keepingCapacity: true)
            let stamp = position + 1
            for pc in current {
                guard case .character(let test) = program[pc], test.accepts(scalar) else { continue }
                if add(pc + 1, position + 1, into: &next, stamp) { return true }
            }
            swap(&current, &next)
            position += 1
        }
        return false
    }
}

// MARK: - Syntax tree

extension ModulePattern {
    /// One test against one scalar.
    enum CharacterTest: Sendable, Hashable {
        case literal(UInt32)
        case anyButNewline
        case set(CharacterSet)

        func accepts(_ scalar: Unicode.Scalar) -> Bool {
            switch self {
            case .literal(let value): return scalar.value == value
            case .anyButNewline: return scalar != "\n"
            case .set(let set): return set.contains(scalar)
            }
        }
    }

    /// A bracket expression or class escape (`[a-z\d]`, `\w`).
    struct CharacterSet: Sendable, Hashable {
        var negated = false
        var ranges: [ClosedRange<UInt32>] = []
        var classes: [ClassEscape] = []

        func contains(_ scalar: Unicode.Scalar) -> Bool {
            var found = ranges.contains { $0.contains(scalar.value) }
            if !found { found = classes.contains { $0.contains(scalar) } }
            return found != negated
        }
    }

    /// Python's `\d \D \w \W \s \S` for str patterns (Unicode).
    enum ClassEscape: Sendable, Hashable {
        case digit, notDigit, word, notWord, space, notSpace

        func contains(_ scalar: Unicode.Scalar) -> Bool {
            switch self {
            case .digit: return Self.isDigit(scalar)
            case .notDigit: return !Self.isDigit(scalar)
            case .word: return Self.isWord(scalar)
            case .notWord: return !Self.isWord(scalar)
            case .space: return Self.isSpace(scalar)
            case .notSpace: return !Self.isSpace(scalar)
            }
        }

        static func isDigit(_ scalar: Unicode.Scalar) -> Bool { scalar.properties.generalCategory == .decimalNumber }
        static func isWord(_ scalar: Unicode.Scalar) -> Bool {
            scalar == "_" || scalar.properties.isAlphabetic || scalar.properties.numericType != nil
        }
        static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
            switch scalar.value {
            case 0x09...0x0D, 0x1C...0x20: return true
            default: return scalar.properties.isWhitespace
            }
        }
    }

    /// Zero-width assertions.
    enum Assertion: Sendable, Hashable {
        /// `^`, `\A`: the start (no MULTILINE flag).
        case start
        /// `$`: the end, or just before a newline that ends the string.
        case endOrFinalNewline
        /// `\Z`: the end.
        case end
        /// `\b`, `\B`.
        case wordBoundary, notWordBoundary

        func holds(at position: Int, in input: [Unicode.Scalar]) -> Bool {
            switch self {
            case .start: return position == 0
            case .end: return position == input.count
            case .endOrFinalNewline:
                return position == input.count || (position == input.count - 1 && input[position] == "\n")
            case .wordBoundary, .notWordBoundary:
                let before = position > 0 && ClassEscape.isWord(input[position - 1])
                let after = position < input.count && ClassEscape.isWord(input[position])
                return (before != after) == (self == .wordBoundary)
            }
        }
    }

    indirect enum Node {
        case empty
        case character(CharacterTest)
        case assertion(Assertion)
        case concatenation([Node])
        case alternation([Node])
        case repeated(Node, min: Int, max: Int?)
        case group(Node)

        /// The tests of a key that is only single characters in a row (no operator, anchor or group).
        var fixedSequence: [CharacterTest]? {
            switch self {
            case .character(let test): return [test]
            case .concatenation(let items):
                var tests: [CharacterTest] = []
                for item in items {
                    guard case .character(let test) = item else { return nil }
                    tests.append(test)
                }
                return tests.isEmpty ? nil : tests
            default: return nil
            }
        }
    }

    enum Instruction: Sendable, Hashable {
        case character(CharacterTest)
        case assert(Assertion)
        case split(Int, Int)
        case jump(Int)
        case match
    }
}

// MARK: - Parser (Python `re` syntax)

extension ModulePattern {
    struct Parser {
        let input: [Unicode.Scalar]
        let key: String
        let file: String?
        var index = 0
        var depth = 0

        init(_ input: [Unicode.Scalar], key: String, file: String?) {
            self.input = input
            self.key = key
            self.file = file
        }

        func invalid(_ reason: String) -> CheckpointError {
            CheckpointError(
                .malformedHeader,
                "adapter_config.json: pattern '\(key)' is not a valid regular expression (\(reason) at position \(index))",
                file: file)
        }
        func unsupported(_ construct: String) -> CheckpointError {
            CheckpointError(
                .unsupported,
                "adapter_config.json: pattern '\(key)' uses \(construct), which nf4kit does not match (only patterns a "
                    + "bounded-time matcher can decide are accepted)",
                file: file)
        }

        var atEnd: Bool { index >= input.count }

        static func hexDigit(_ c: Unicode.Scalar) -> UInt32? {
            switch c {
            case "0"..."9": return c.value - 48
            case "a"..."f": return c.value - 87
            case "A"..."F": return c.value - 55
            default: return nil
            }
        }
        var peek: Unicode.Scalar? { atEnd ? nil : input[index] }

        mutating func parseAll() throws(CheckpointError) -> Node {
            let node = try parseAlternation()
            guard atEnd else { throw invalid("unbalanced parenthesis") }
            return node
        }

        mutating func parseAlternation() throws(CheckpointError) -> Node {
            var branches = [try parseConcatenation()]
            while peek == "|" {
                index += 1
                branches.append(try parseConcatenation())
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        mutating func parseConcatenation() throws(CheckpointError) -> Node {
            var items: [Node] = []
            while let scalar = peek, scalar != "|", scalar != ")" {
                var atom = try parseAtom()
                guard let atomNode = atom else { continue }
                atom = try parseQuantifiers(atomNode)
                items.append(atom!)
            }
            switch items.count {
            case 0: return .empty
            case 1: return items[0]
            default: return .concatenation(items)
            }
        }

        /// Quantifiers after an atom: `*`, `+`, `?`, `{m,n}`, each optionally lazy (`?`, same result here).
        mutating func parseQuantifiers(_ atom: Node) throws(CheckpointError) -> Node {
            var node = atom
            var quantified = false
            while let scalar = peek {
                let bounds: (Int, Int?)
                switch scalar {
                case "*": bounds = (0, nil); index += 1
                case "+": bounds = (1, nil); index += 1
                case "?": bounds = (0, 1); index += 1
                case "{":
                    guard let counted = try parseCountedRepetition() else { return node }
                    bounds = counted
                default: return node
                }
                if quantified { throw invalid("multiple repeat") }
                if case .assertion = node { throw invalid("nothing to repeat") }
                if case .empty = node { throw invalid("nothing to repeat") }
                quantified = true
                if peek == "?" {
                    index += 1
                } else if peek == "+" {
                    throw unsupported("a possessive quantifier")
                }
                node = .repeated(node, min: bounds.0, max: bounds.1)
            }
            return node
        }

        /// `{m}`, `{m,}`, `{,n}`, `{m,n}`; `nil` (and no input consumed) when the brace is a literal, as in Python.
        mutating func parseCountedRepetition() throws(CheckpointError) -> (Int, Int?)? {
            let start = index
            index += 1
            func number() -> Int?? {
                var value = 0
                var digits = 0
                while let scalar = peek, ("0"..."9").contains(scalar) {
                    let digit = Int(scalar.value) - 48
                    value = min(value * 10 + digit, 1 << 40)
                    digits += 1
                    index += 1
                }
                return digits == 0 ? .some(nil) : .some(value)
            }
            let low = number()!
            var high: Int? = low
            if peek == "," {
                index += 1
                high = number()!
            }
            guard peek == "}" else {
                index = start
                return nil
            }
            index += 1
            let minimum = low ?? 0
            if let high, high < minimum { throw invalid("min repeat greater than max repeat") }
            if minimum >= Int(UInt32.max) || (high ?? 0) >= Int(UInt32.max) {
                throw invalid("the repetition number is too large")
            }
            return (minimum, high)
        }

        mutating func parseAtom() throws(CheckpointError) -> Node? {
            let scalar = input[index]
            index += 1
            switch scalar {
            case ".": return .character(.anyButNewline)
            case "^": return .assertion(.start)
            case "$": return .assertion(.endOrFinalNewline)
            case "*", "+", "?": throw invalid("nothing to repeat")
            case "{":
                index -= 1
                if try parseCountedRepetition() != nil { throw invalid("nothing to repeat") }
                index += 1
                return .character(.literal(scalar.value))
            case "[": return .character(.set(try parseBracket()))
            case "(": return try parseGroup()
            case "\\": return try parseEscape()
            default: return .character(.literal(scalar.value))
            }
        }

        mutating func parseGroup() throws(CheckpointError) -> Node? {
            depth += 1
            defer { depth -= 1 }
            guard depth <= 200 else { throw unsupported("more than 200 nested groups") }
            if peek == "?" {
                index += 1
                guard let kind = peek else { throw invalid("unexpected end of pattern") }
                index += 1
                switch kind {
                case ":": break
                case "P":
                    if peek == "<" {
                        index += 1
                        var name = ""
                        while let c = peek, c != ">" { name.unicodeScalars.append(c); index += 1 }
                        guard peek == ">", !name.isEmpty else { throw invalid("missing group name") }
                        index += 1
                    } else if peek == "=" {
                        throw unsupported("a back-reference")
                    } else {
                        throw invalid("unknown extension ?P")
                    }
                case "<":
                    if peek == "=" || peek == "!" { throw unsupported("a look-behind assertion") }
                    throw invalid("unknown extension ?<")
                case "=", "!": throw unsupported("a look-ahead assertion")
                case ">": throw unsupported("an atomic group")
                case "(": throw unsupported("a conditional group")
                case "#":
                    while let c = peek, c != ")" { _ = c; index += 1 }
                    guard peek == ")" else { throw invalid("missing ), unterminated comment") }
                    index += 1
                    return nil
                default: throw unsupported("inline flags or an extension '(?\(kind)'")
                }
            }
            let inner = try parseAlternation()
            guard peek == ")" else { throw invalid("missing ), unterminated subpattern") }
            index += 1
            return .group(inner)
        }

        mutating func parseEscape() throws(CheckpointError) -> Node {
            guard let scalar = peek else { throw invalid("bad escape (end of pattern)") }
            index += 1
            switch scalar {
            case "A": return .assertion(.start)
            case "Z": return .assertion(.end)
            case "b": return .assertion(.wordBoundary)
            case "B": return .assertion(.notWordBoundary)
            case "1"..."9": throw unsupported("a back-reference")
            default:
                index -= 1
                return .character(try parseCharacterEscape(inBracket: false))
            }
        }

        /// An escape that stands for characters: a class (`\d`), a control or code (`\n`, `\x41`), or a literal.
        mutating func parseCharacterEscape(inBracket: Bool) throws(CheckpointError) -> CharacterTest {
            let scalar = input[index]
            index += 1
            func hex(_ count: Int) throws(CheckpointError) -> UInt32 {
                var value: UInt32 = 0
                for _ in 0..<count {
                    guard let c = peek, let digit = Self.hexDigit(c) else { throw invalid("incomplete escape") }
                    value = value * 16 + digit
                    index += 1
                }
                return value
            }
            switch scalar {
            case "d": return .set(CharacterSet(classes: [.digit]))
            case "D": return .set(CharacterSet(classes: [.notDigit]))
            case "w": return .set(CharacterSet(classes: [.word]))
            case "W": return .set(CharacterSet(classes: [.notWord]))
            case "s": return .set(CharacterSet(classes: [.space]))
            case "S": return .set(CharacterSet(classes: [.notSpace]))
            case "n": return .literal(0x0A)
            case "t": return .literal(0x09)
            case "r": return .literal(0x0D)
            case "f": return .literal(0x0C)
            case "v": return .literal(0x0B)
            case "a": return .literal(0x07)
            case "b" where inBracket: return .literal(0x08)
            case "x": return .literal(try hex(2))
            case "u": return .literal(try hex(4))
            case "U":
                let value = try hex(8)
                guard value <= 0x10FFFF else { throw invalid("bad escape \\U") }
                return .literal(value)
            case "0":
                var value: UInt32 = 0
                var digits = 0
                while digits < 2, let c = peek, ("0"..."7").contains(c) {
                    value = value * 8 + c.value - 48
                    index += 1
                    digits += 1
                }
                return .literal(value)
            case "1"..."9" where inBracket: throw unsupported("an octal or group escape in a set")
            case "N": throw unsupported("a named Unicode escape (\\N{...})")
            default:
                if scalar.isASCII && (scalar.properties.isAlphabetic || scalar.properties.numericType != nil) {
                    throw invalid("bad escape \\\(scalar)")
                }
                return .literal(scalar.value)
            }
        }

        /// `[...]` after the opening bracket.
        mutating func parseBracket() throws(CheckpointError) -> CharacterSet {
            var set = CharacterSet()
            if peek == "^" {
                set.negated = true
                index += 1
            }
            var first = true
            while true {
                guard let scalar = peek else { throw invalid("unterminated character set") }
                if scalar == "]" && !first {
                    index += 1
                    return set
                }
                first = false
                let low = try bracketItem()
                guard case .literal(let lowValue) = low else {
                    if peek == "-", index + 1 < input.count, input[index + 1] != "]" {
                        throw invalid("bad character range")
                    }
                    if case .set(let inner) = low { set.classes += inner.classes }
                    continue
                }
                // A range `a-z`, unless the dash is the last character before `]`.
                if peek == "-", index + 1 < input.count, input[index + 1] != "]" {
                    index += 1
                    let high = try bracketItem()
                    guard case .literal(let highValue) = high else { throw invalid("bad character range") }
                    guard lowValue <= highValue else { throw invalid("bad character range") }
                    set.ranges.append(lowValue...highValue)
                } else {
                    set.ranges.append(lowValue...lowValue)
                }
            }
        }

        mutating func bracketItem() throws(CheckpointError) -> CharacterTest {
            let scalar = input[index]
            if scalar == "\\" {
                index += 1
                guard !atEnd else { throw invalid("bad escape (end of pattern)") }
                return try parseCharacterEscape(inBracket: true)
            }
            index += 1
            return .literal(scalar.value)
        }
    }
}

// MARK: - Compiler

extension ModulePattern {
    struct ProgramBuilder {
        let key: String
        let file: String?
        var program: [Instruction] = []

        mutating func append(_ instruction: Instruction) throws(CheckpointError) {
            guard program.count < ModulePattern.instructionLimit else {
                throw CheckpointError(
                    .unsupported,
                    "adapter_config.json: pattern '\(key)' compiles to more than \(ModulePattern.instructionLimit) "
                        + "states (counted repetitions are expanded); nf4kit refuses it",
                    file: file)
            }
            program.append(instruction)
        }

        mutating func emit(_ node: Node) throws(CheckpointError) {
            switch node {
            case .empty: break
            case .character(let test): try append(.character(test))
            case .assertion(let assertion): try append(.assert(assertion))
            case .group(let inner): try emit(inner)
            case .concatenation(let items):
                for item in items { try emit(item) }
            case .alternation(let branches):
                var jumps: [Int] = []
                for (i, branch) in branches.enumerated() {
                    if i < branches.count - 1 {
                        let split = program.count
                        try append(.split(split + 1, -1))
                        try emit(branch)
                        jumps.append(program.count)
                        try append(.jump(-1))
                        program[split] = .split(split + 1, program.count)
                    } else {
                        try emit(branch)
                    }
                }
                for jump in jumps { program[jump] = .jump(program.count) }
            case .repeated(let inner, let minimum, let maximum):
                // A copy that emits nothing (an empty group) matches the empty string however often it repeats;
                // skipping it keeps `(){4000000000}` from looping without growing the program.
                let before = program.count
                try emit(inner)
                if program.count == before { return }
                program.removeSubrange(before...)
                for _ in 0..<minimum { try emit(inner) }
                if let maximum {
                    // Each optional copy: split to it or past all of them.
                    var splits: [Int] = []
                    for _ in minimum..<maximum {
                        splits.append(program.count)
                        try append(.split(program.count + 1, -1))
                        try emit(inner)
                    }
                    for split in splits { program[split] = .split(split + 1, program.count) }
                } else {
                    let split = program.count
                    try append(.split(split + 1, -1))
                    try emit(inner)
                    try append(.jump(split))
                    program[split] = .split(split + 1, program.count)
                }
            }
        }
    }
}
