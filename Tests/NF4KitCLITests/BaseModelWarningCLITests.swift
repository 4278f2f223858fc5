import Foundation
import NF4KitTestSupport
import Testing

/// `nf4kit merge` warns that an adapter was made for another base only when it was (issue 16 item 5).
@Suite struct BaseModelWarningCLITests {
    static let commit = "0123456789abcdef0123456789abcdef01234567"
    static let warning = "the adapter was made for base"

    /// A copy of the golden adapter whose `base_model_name_or_path` is `base`.
    func adapter(naming base: String, in directory: TemporaryDirectory, as name: String) throws -> String {
        let folder = directory.file(name)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Fixture.path("llama-tiny/lora/adapter_model.safetensors"),
            toPath: folder + "/adapter_model.safetensors")
        let config = try String(contentsOfFile: Fixture.path("llama-tiny/lora/adapter_config.json"), encoding: .utf8)
        let named = config.replacingOccurrences(of: "\"/tmp/gs/llama-tiny/fp16\"", with: "\"\(base)\"")
        #expect(named != config)
        try Array(named.utf8).write(to: folder + "/adapter_config.json")
        return folder
    }

    func merge(
        _ base: String, _ adapter: String, _ directory: TemporaryDirectory, env: [String: String]
    ) throws
        -> NF4KitCLI.Result
    {
        let out = directory.file("out-\(UUID().uuidString)")
        let result = try NF4KitCLI.run(["merge", base, adapter, "-o", out, "--no-progress"], environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        return result
    }

    @Test func `no warning for a Hub cache snapshot of the very model the adapter names`() throws {
        let directory = TemporaryDirectory("nf4kit-base")
        defer { directory.cleanup() }
        let cache = FakeHubCache(root: directory.file("hub"))
        let snapshot = try cache.add(
            "TinyLlama/TinyLlama-1.1B-Chat-v1.0", from: Fixture.path("llama-tiny/fp16"), commit: Self.commit)
        let lora = try adapter(naming: "TinyLlama/TinyLlama-1.1B-Chat-v1.0", in: directory, as: "lora")
        for base in [snapshot, snapshot + "/model.safetensors", "TinyLlama/TinyLlama-1.1B-Chat-v1.0"] {
            let result = try merge(base, lora, directory, env: cache.environment)
            #expect(!result.stderr.contains(Self.warning), "\(base): \(result.stderr)")
        }
    }

    @Test func `no warning for the model.safetensors of the folder the adapter names`() throws {
        let directory = TemporaryDirectory("nf4kit-base")
        defer { directory.cleanup() }
        // The golden adapter names /tmp/gs/llama-tiny/fp16, where PEFT made it.
        let result = try merge(
            Fixture.path("llama-tiny/fp16/model.safetensors"), Fixture.path("llama-tiny/lora"), directory,
            env: FakeHubCache(root: directory.file("hub")).environment)
        #expect(!result.stderr.contains(Self.warning), "\(result.stderr)")
    }

    @Test func `no warning for an NF4 copy of the base, named as a copy or converted from the cache`() throws {
        let directory = TemporaryDirectory("nf4kit-base")
        defer { directory.cleanup() }
        let cache = FakeHubCache(root: directory.file("hub"))
        try cache.add("Org/Tiny", from: Fixture.path("llama-tiny/fp16"), commit: Self.commit)
        // The golden NF4 folder beside the fp16 one the adapter names: llama-tiny/nf4-dq for llama-tiny/fp16.
        let sibling = try merge(
            Fixture.path("llama-tiny/nf4-dq"), Fixture.path("llama-tiny/lora"), directory, env: cache.environment)
        #expect(!sibling.stderr.contains(Self.warning), "\(sibling.stderr)")
        #expect(sibling.stderr.contains("re-quantizes"), "the 4-bit base warning stays")
        // `-nf4` added to the name the adapter gives.
        let named = try NF4KitCLI.run(
            ["convert", Fixture.path("llama-tiny/fp16"), "-o", directory.file("Tiny-nf4"), "--quiet"],
            environment: cache.environment)
        #expect(named.status == 0, "\(named.stderr)")
        let lora = try adapter(naming: "Org/Tiny", in: directory, as: "lora")
        let empty = FakeHubCache(root: directory.file("empty")).environment  // by the name alone
        let copy = try merge(directory.file("Tiny-nf4"), lora, directory, env: empty)
        #expect(!copy.stderr.contains(Self.warning), "\(copy.stderr)")
        // Any name, converted from the model the adapter names, which is in the cache.
        let converted = try NF4KitCLI.run(
            ["convert", "Org/Tiny", "-o", directory.file("q"), "--quiet"], environment: cache.environment)
        #expect(converted.status == 0, "\(converted.stderr)")
        let renamed = try merge(directory.file("q"), lora, directory, env: cache.environment)
        #expect(!renamed.stderr.contains(Self.warning), "\(renamed.stderr)")
    }

    @Test func `a warning when the adapter names another model`() throws {
        let directory = TemporaryDirectory("nf4kit-base")
        defer { directory.cleanup() }
        let cache = FakeHubCache(root: directory.file("hub"))
        // Another model in the cache, whose config says another architecture.
        let big = directory.file("big")
        try FileManager.default.createDirectory(atPath: big, withIntermediateDirectories: true)
        let config = try String(contentsOfFile: Fixture.path("llama-tiny/fp16/config.json"), encoding: .utf8)
        try Array(config.replacingOccurrences(of: "\"hidden_size\": 256", with: "\"hidden_size\": 4096").utf8)
            .write(to: big + "/config.json")
        try cache.add("Org/Big", from: big, commit: Self.commit)

        let notOnDisk = try adapter(naming: "mistralai/Mistral-7B-v0.1", in: directory, as: "mistral-lora")
        let named = try merge(Fixture.path("llama-tiny/fp16"), notOnDisk, directory, env: cache.environment)
        #expect(
            named.stderr.contains("Warning: \(notOnDisk): \(Self.warning) 'mistralai/Mistral-7B-v0.1'"),
            "\(named.stderr)")
        #expect(named.stderr.contains("check that this is the right base model"))

        let other = try adapter(naming: "Org/Big", in: directory, as: "big-lora")
        let differs = try merge(Fixture.path("llama-tiny/fp16"), other, directory, env: cache.environment)
        #expect(differs.stderr.contains("\(Self.warning) 'Org/Big'"), "\(differs.stderr)")
        #expect(differs.stderr.contains("has hidden_size 4096, the base 256"), "\(differs.stderr)")

        let local = try adapter(naming: "/models/llama-2-7b-hf", in: directory, as: "path-lora")
        let path = try merge(Fixture.path("llama-tiny/fp16"), local, directory, env: cache.environment)
        #expect(path.stderr.contains("\(Self.warning) '/models/llama-2-7b-hf'"), "\(path.stderr)")
    }
}
