import NF4KitCore
import NF4KitMerge
import Testing

/// `rank_pattern` / `alpha_pattern` keys against module names. Every expected value below was printed by
/// CPython 3.12: `bool(re.match(rf"(.*\.)?({key})$", name))`, PEFT's rule.
@Suite struct ModulePatternTests {
    static let pythonResults: [(key: String, name: String, matches: Bool)] = [
        ("q_proj", "model.layers.0.self_attn.q_proj", true),
        ("proj", "model.layers.0.self_attn.q_proj", false),
        ("^model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.q_proj", true),
        ("^q_proj", "model.layers.0.self_attn.q_proj", false),
        (#"layers\.[0-3]\.mlp\.(gate|up)_proj"#, "model.layers.2.mlp.up_proj", true),
        (#"layers\.[0-3]\.mlp\.(gate|up)_proj"#, "model.layers.4.mlp.up_proj", false),
        (#"layers.\d+.self_attn.(q|k)_proj"#, "model.layers.12.self_attn.k_proj", true),
        ("q_proj$", "model.q_proj\n", true),
        (#"q_proj\Z"#, "model.q_proj\n", false),
        ("x{2,3}", "a.xxx", true),
        ("x{2,3}", "a.xxxx", false),
        (#"\bv_proj"#, "layers.0.v_proj", true),
        ("[^.]+_proj", "layers.0.v_proj", true),
        (#"self_attn\..*"#, "model.layers.0.self_attn.o_proj", true),
        ("q_proj", "model.layersq_proj", false),
        ("o_pro.", "x.o_proj", true),
        ("(a*)*b", "aaaab", true),
        ("(a|ab)(c|bcd)(d*)", "x.abcd", true),
        ("(?:)*q", "a.q", true),
        (#"[\w.]+\.v_proj"#, "m.layers.0.v_proj", true),
    ]

    @Test(arguments: pythonResults.indices)
    func `a key selects the modules Python's re selects`(_ index: Int) throws {
        let (key, name, expected) = Self.pythonResults[index]
        #expect(try ModulePattern(key).matches(name) == expected, "\(key) vs \(name)")
        #expect(AdapterConfig.patternMatches(key, module: name) == expected)
    }

    /// The class of hang: nested quantifiers that make a backtracking engine take exponential time (CPython
    /// itself does not finish `(a*)*b` on this name). The set simulation answers at once; a regression would hang
    /// the test rather than fail it, which the test runner's time limit reports.
    @Test func `catastrophic patterns are matched in bounded time`() throws {
        let name = String(repeating: "a", count: 5_000) + "c"
        for key in ["(a*)*b", "(a|a)*b", "(a+)+b", "(.*a){20}b", "((a*)*)*b"] {
            #expect(try ModulePattern(key).matches(name) == false)
        }
    }

    @Test func `huge counted repetitions and empty loops are refused or bounded, not expanded`() throws {
        #expect(throws: CheckpointError.self) { try ModulePattern("a{1000000}") }
        #expect(try ModulePattern("(){4000000000}q").matches("x.q"))
        #expect(throws: CheckpointError.self) { try ModulePattern("a{4294967296}") }
    }

    @Test func `invalid keys are malformed and constructs a set simulation cannot decide are unsupported`() {
        for key in ["(", "a)", "*a", "a**", "[z-a]", #"\q"#, "{3}", #"[\d-z]"#, "(?<n>a)"] {
            #expect(throws: CheckpointError.self, "\(key)") { try ModulePattern(key) }
            if let error = (try? ModulePattern(key)) == nil ? Self.error(key) : nil {
                #expect(error.code == .malformedHeader, "\(key)")
            }
        }
        for key in [#"(a)\1"#, "(?=a)a", "(?<!a)b", "(?>a)", "a*+", "(?i)q_proj", "(?P=n)"] {
            #expect(Self.error(key)?.code == .unsupported, "\(key)")
        }
    }

    @Test func `twenty thousand plain keys are compiled once per config`() throws {
        var members: [String] = []
        for i in 0..<20_000 { members.append("\"model.layers.\(i).self_attn.q_proj\": 4") }
        let json = "{\"peft_type\": \"LORA\", \"r\": 8, \"rank_pattern\": {" + members.joined(separator: ", ") + "}}"
        let config = try AdapterConfig(json: jsonObject(json))
        let modules = (0..<64).map { "model.layers.\($0).self_attn.v_proj" } + ["model.layers.19999.self_attn.q_proj"]
        #expect(config.patternRank(forModule: "model.layers.19999.self_attn.q_proj") == 4)
        #expect(config.patternRank(forModule: "model.layers.0.self_attn.v_proj") == nil)
        #expect(config.patternsMatchingNone(of: modules).count == 19_999)
    }

    @Test func `many keys that each compile large are refused together, not compiled without bound`() throws {
        // x{4000} is 7 bytes but 4,000 states; 20 of them pass alone and exceed the total.
        let members = (0..<20).map { "\"k\($0)x{4000}\": 2" }.joined(separator: ", ")
        let json = "{\"peft_type\": \"LORA\", \"rank_pattern\": {" + members + "}}"
        #expect(throws: CheckpointError.self) { try AdapterConfig(json: jsonObject(json)) }
        #expect(try ModulePattern("x{4000}").instructionCount >= 4_000)
    }

    @Test func `an adapter config with an invalid key is refused naming the key`() throws {
        let json = #"{"peft_type": "LORA", "alpha_pattern": {"(?=x)q_proj": 2}}"#
        do {
            _ = try AdapterConfig(json: jsonObject(json), file: "adapter_config.json")
            Issue.record("accepted")
        } catch let error as CheckpointError {
            #expect(error.code == .unsupported)
            #expect(error.description.contains("(?=x)q_proj"))
        }
    }

    static func error(_ key: String) -> CheckpointError? {
        do {
            _ = try ModulePattern(key)
            return nil
        } catch {
            return error
        }
    }
}
