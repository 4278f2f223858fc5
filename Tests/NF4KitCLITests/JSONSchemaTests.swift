import Foundation
import NF4KitTestSupport
import Testing

/// Every `--json` document validates against its JSON Schema in docs/schemas/ (issue 16, item 10).
@Suite struct JSONSchemaTests {
    static func schema(_ name: String) throws -> JSONSchemaValidator {
        try JSONSchemaValidator(schemaFile: RepositoryPaths.root + "/docs/schemas/" + name)
    }

    static let tiny = "llama-tiny/"

    /// (schema, arguments): real commands on the fixtures, covering every optional section.
    static let cases: [(String, [String])] = [
        ("inspect.schema.json", ["inspect", "--json", Fixture.path(tiny + "nf4-dq")]),
        ("inspect.schema.json", ["inspect", "--json", "--lora-rank", "8", Fixture.path(tiny + "fp16")]),
        (
            "inspect.schema.json",
            ["inspect", "--json", "--lora-rank", "4", "--lora-targets", "q_proj", Fixture.path(tiny + "fp4-dq")]
        ),
        ("inspect.schema.json", ["inspect", "--json", Fixture.path(tiny + "lora")]),
        ("inspect.schema.json", ["inspect", "--json", Fixture.path("gguf/sample.gguf")]),
        ("inspect-analysis.schema.json", ["inspect", "--json", "--sensitivity", Fixture.path(tiny + "fp16")]),
        ("inspect-analysis.schema.json", ["inspect", "--json", "--what-if", "1b,70b,qwen2.5-7b"]),
        (
            "inspect-analysis.schema.json",
            ["inspect", "--json", "--sensitivity", "--what-if", "8b", Fixture.path(tiny + "fp16")]
        ),
        ("inspect-analysis.schema.json", ["inspect", "--json", "--what-if", "7b", Fixture.path(tiny + "nf4-dq")]),
        ("diff.schema.json", ["diff", "--json", Fixture.path(tiny + "fp16"), Fixture.path(tiny + "nf4-dq")]),
        ("diff.schema.json", ["diff", "--json", Fixture.path(tiny + "fp16"), Fixture.path(tiny + "fp16")]),
        ("diff.schema.json", ["diff", "--json", Fixture.path(tiny + "fp16"), Fixture.path(tiny + "lora")]),
    ]

    @Test(arguments: 0..<cases.count)
    func `the JSON of a real run validates against its schema`(index: Int) throws {
        let (schemaName, arguments) = Self.cases[index]
        let result = try NF4KitCLI.run(arguments)
        #expect(result.status == 0, "\(arguments): \(result.stderr)")
        let document = try SchemaJSON.parse(result.stdout)
        let errors = try Self.schema(schemaName).errors(document)
        #expect(errors.isEmpty, "\(arguments.joined(separator: " ")) against \(schemaName): \(errors.prefix(10))")
    }

    @Test func `the validator rejects a document that breaks the schema`() throws {
        let result = try NF4KitCLI.run([
            "diff", "--json", Fixture.path(Self.tiny + "fp16"), Fixture.path(Self.tiny + "nf4-dq"),
        ])
        guard case .object(var document) = try SchemaJSON.parse(result.stdout) else {
            Issue.record("not an object"); return
        }
        let schema = try Self.schema("diff.schema.json")
        #expect(schema.errors(.object(document)).isEmpty)
        var missing = document
        missing["summary"] = nil
        #expect(schema.errors(.object(missing)) == ["$: missing summary"])
        var extra = document
        extra["unexpected"] = .integer(1)
        #expect(schema.errors(.object(extra)) == ["$: unexpected key unexpected"])
        document["schemaVersion"] = .integer(2)
        #expect(schema.errors(.object(document)).first?.hasPrefix("$.schemaVersion") == true)
        guard case .object(var summary)? = document["summary"] else { return }
        summary["rmse"] = .string("small")
        document["summary"] = .object(summary)
        #expect(schema.errors(.object(document)).contains("$.summary.rmse: string, expected number or null"))
        #expect(throws: SchemaJSON.ParseError.self) { try SchemaJSON.parse("{\"a\": 1,}") }
    }

    @Test func `every schema file is valid JSON that uses only checked keywords`() throws {
        let folder = RepositoryPaths.root + "/docs/schemas"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".schema.json") }
            .sorted()
        #expect(files == ["diff.schema.json", "inspect-analysis.schema.json", "inspect.schema.json"])
        for file in files {
            let unsupported = try Self.schema(file).unsupportedKeywords()
            #expect(unsupported.isEmpty, "\(file) uses keywords the validator does not check: \(unsupported)")
        }
    }
}
