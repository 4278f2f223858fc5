import Foundation
import NF4KitTestSupport
import Testing

/// A Hugging Face Hub cache in a temporary folder, laid out as `huggingface_hub` writes it: files in `blobs/`,
/// `refs/<revision>` holding a commit hash, `snapshots/<commit>/` made of relative links into `blobs/`.
struct FakeHubCache {
    let root: String

    /// Adds the files of `folder` as the snapshot `commit` of `repository` (`org/name`), pointed at by `refs`.
    /// - Returns: The snapshot folder.
    @discardableResult
    func add(_ repository: String, from folder: String, commit: String, refs: [String] = ["main"]) throws -> String {
        let fm = FileManager.default
        let model = root + "/models--" + repository.replacingOccurrences(of: "/", with: "--")
        let snapshot = model + "/snapshots/" + commit
        for sub in ["blobs", "refs", "snapshots/" + commit] {
            try fm.createDirectory(atPath: model + "/" + sub, withIntermediateDirectories: true)
        }
        for name in try fm.contentsOfDirectory(atPath: folder) {
            let blob = commit + "-" + name
            try fm.copyItem(atPath: folder + "/" + name, toPath: model + "/blobs/" + blob)
            try fm.createSymbolicLink(atPath: snapshot + "/" + name, withDestinationPath: "../../blobs/" + blob)
        }
        for ref in refs { try Array(commit.utf8).write(to: model + "/refs/" + ref) }
        return snapshot
    }

    /// The environment that makes nf4kit use this cache and nothing the machine has.
    var environment: [String: String] { ["HF_HUB_CACHE": root, "HUGGINGFACE_HUB_CACHE": "", "HF_HOME": ""] }
}

/// Hub ids (`org/name[@revision]`) resolve in the local Hugging Face cache for every command, offline
/// (issue 16 item 6).
@Suite struct HubCacheCLITests {
    static let commitA = "0123456789abcdef0123456789abcdef01234567"
    static let commitB = "89abcdef0123456789abcdef0123456789abcdef"

    @Test func `inspect finds org/name in HF_HUB_CACHE through refs/main`() throws {
        let directory = TemporaryDirectory("nf4kit-hub")
        defer { directory.cleanup() }
        let cache = FakeHubCache(root: directory.file("hub"))
        let snapshot = try cache.add(
            "TinyLlama/TinyLlama-1.1B-Chat-v1.0", from: Fixture.path("llama-tiny/fp16"), commit: Self.commitA)
        let result = try NF4KitCLI.run(
            ["inspect", "TinyLlama/TinyLlama-1.1B-Chat-v1.0"], environment: cache.environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains(snapshot), "\(result.stdout)")
        #expect(result.stdout.contains("LlamaForCausalLM"))
    }

    @Test func `a revision after @ is a branch or tag in refs/, or a commit hash`() throws {
        let directory = TemporaryDirectory("nf4kit-hub")
        defer { directory.cleanup() }
        let cache = FakeHubCache(root: directory.file("hub"))
        let plain = try cache.add("Org/Tiny", from: Fixture.path("llama-tiny/fp16"), commit: Self.commitA)
        let quantized = try cache.add(
            "Org/Tiny", from: Fixture.path("llama-tiny/nf4-dq"), commit: Self.commitB, refs: ["v2"])
        for (id, snapshot) in [
            ("Org/Tiny", plain), ("Org/Tiny@main", plain), ("Org/Tiny@v2", quantized),
            ("Org/Tiny@\(Self.commitA)", plain), ("Org/Tiny@\(Self.commitB)", quantized),
        ] {
            let result = try NF4KitCLI.run(["inspect", id], environment: cache.environment)
            #expect(result.status == 0, "\(id): \(result.stderr)")
            #expect(result.stdout.contains(snapshot), "\(id): \(result.stdout)")
        }
    }

    @Test func `HF_HOME/hub is the cache when HF_HUB_CACHE is not set`() throws {
        let directory = TemporaryDirectory("nf4kit-hub")
        defer { directory.cleanup() }
        let cache = FakeHubCache(root: directory.file("home/hub"))
        let snapshot = try cache.add("Org/Tiny", from: Fixture.path("llama-tiny/fp16"), commit: Self.commitA)
        let result = try NF4KitCLI.run(
            ["inspect", "Org/Tiny"],
            environment: ["HF_HUB_CACHE": "", "HUGGINGFACE_HUB_CACHE": "", "HF_HOME": directory.file("home")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains(snapshot))
    }

    @Test func `a Hub id that is not in the cache exits 74 saying where it looked`() throws {
        let directory = TemporaryDirectory("nf4kit-hub")
        defer { directory.cleanup() }
        let cache = FakeHubCache(root: directory.file("hub"))
        try cache.add("Org/Tiny", from: Fixture.path("llama-tiny/fp16"), commit: Self.commitA)
        let missing = try NF4KitCLI.run(["inspect", "Org/Missing"], environment: cache.environment)
        #expect(missing.status == 74)
        #expect(missing.stdout.isEmpty)
        #expect(missing.stderr.contains("Org/Missing"))
        #expect(missing.stderr.contains(cache.root + "/models--Org--Missing/refs/main"), "\(missing.stderr)")
        #expect(missing.stderr.contains("from HF_HUB_CACHE"))
        #expect(missing.stderr.contains("never downloads"))
        let noBranch = try NF4KitCLI.run(
            ["convert", "Org/Tiny@v9", "-o", directory.file("out")], environment: cache.environment)
        #expect(noBranch.status == 74)
        #expect(noBranch.stderr.contains(cache.root + "/models--Org--Tiny/refs/v9"), "\(noBranch.stderr)")
        #expect(noBranch.stderr.contains("snapshots there: \(Self.commitA)"))
        #expect(!FileManager.default.fileExists(atPath: directory.file("out")))
    }

    @Test func `a refs file that holds no commit hash exits 65 naming it`() throws {
        let directory = TemporaryDirectory("nf4kit-hub")
        defer { directory.cleanup() }
        let cache = FakeHubCache(root: directory.file("hub"))
        try cache.add("Org/Tiny", from: Fixture.path("llama-tiny/fp16"), commit: Self.commitA)
        try Array("../../../etc\n".utf8).write(to: cache.root + "/models--Org--Tiny/refs/main")
        let result = try NF4KitCLI.run(["inspect", "Org/Tiny"], environment: cache.environment)
        #expect(result.status == 65)
        #expect(result.stderr.contains(cache.root + "/models--Org--Tiny/refs/main"), "\(result.stderr)")
    }

    @Test func `a local path that exists wins over the Hub id it spells`() throws {
        let directory = TemporaryDirectory("nf4kit-hub")
        defer { directory.cleanup() }
        let cache = FakeHubCache(root: directory.file("hub"))
        try cache.add("Org/Tiny", from: Fixture.path("llama-tiny/fp16"), commit: Self.commitA)
        let work = directory.file("work")
        try FileManager.default.createDirectory(atPath: work + "/Org", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixture.path("llama-tiny/nf4-dq"), toPath: work + "/Org/Tiny")
        let result = try NF4KitCLI.run(
            ["inspect", "Org/Tiny", "--json"], environment: cache.environment, directory: work)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("\"Org/Tiny\""), "the local folder, not the snapshot")
        #expect(!result.stdout.contains(cache.root))
    }

    @Test func `convert, merge (base and adapter) and diff take Hub ids`() throws {
        let directory = TemporaryDirectory("nf4kit-hub")
        defer { directory.cleanup() }
        let cache = FakeHubCache(root: directory.file("hub"))
        try cache.add("Org/Tiny", from: Fixture.path("llama-tiny/fp16"), commit: Self.commitA)
        try cache.add("Org/Tiny-lora", from: Fixture.path("llama-tiny/lora"), commit: Self.commitB)
        let env = cache.environment

        let converted = try NF4KitCLI.run(
            ["convert", "Org/Tiny", "-o", directory.file("nf4"), "--quiet"], environment: env)
        #expect(converted.status == 0, "\(converted.stderr)")
        for file in ["model.safetensors", "config.json"] {
            #expect(
                try [UInt8](contentsOf: directory.file("nf4/" + file))
                    == [UInt8](contentsOf: Fixture.path("llama-tiny/nf4-dq/" + file)))
        }

        let merged = try NF4KitCLI.run(
            ["merge", "Org/Tiny", "Org/Tiny-lora", "-o", directory.file("m"), "--quiet"], environment: env)
        let reference = try NF4KitCLI.run([
            "merge", Fixture.path("llama-tiny/fp16"), Fixture.path("llama-tiny/lora"), "-o", directory.file("r"),
            "--quiet",
        ])
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(reference.status == 0, "\(reference.stderr)")
        #expect(
            try [UInt8](contentsOf: directory.file("m/model.safetensors"))
                == [UInt8](contentsOf: directory.file("r/model.safetensors")))

        let diff = try NF4KitCLI.run(["diff", "Org/Tiny", Fixture.path("llama-tiny/fp16"), "--json"], environment: env)
        #expect(diff.status == 0, "\(diff.stderr)")
        #expect(diff.stdout.contains("\"identicalTensors\": 21"), "\(diff.stdout.prefix(400))")
    }
}
