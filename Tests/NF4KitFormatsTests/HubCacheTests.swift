import NF4KitFormats
import Testing

/// Hub ids and cache folder names, as `huggingface_hub` spells them.
@Suite struct HubCacheTests {
    @Test(
        arguments: [
            ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "TinyLlama", "TinyLlama-1.1B-Chat-v1.0", nil),
            ("meta-llama/Llama-2-7b-hf@main", "meta-llama", "Llama-2-7b-hf", "main"),
            ("Org/m_1@refs/pr/1", "Org", "m_1", "refs/pr/1"),
        ] as [(String, String, String, String?)])
    func `a Hub id is org/name with an optional revision`(
        text: String, org: String, name: String, revision: String?
    ) throws {
        let id = try #require(HubCache.ModelID(text))
        #expect(id.organization == org)
        #expect(id.name == name)
        #expect(id.revision == revision)
        #expect(id.folderName == "models--\(org)--\(name)")
    }

    @Test(arguments: [
        "llama", "./Org/Tiny", "/abs/path", "a/b/c", "Org/", "/Tiny", "Org/Ti ny", "Org/-x", "Org/x.", "Org/a--b",
        "Org/a..b", "Org/Tiny@", "Org/Tiny@../../etc", "Org/Tiny@/abs", "Org/Tiny@a//b",
    ])
    func `anything else is not a Hub id`(text: String) {
        #expect(HubCache.ModelID(text) == nil)
    }

    @Test func `a path inside a cache folder names its repository`() {
        #expect(
            HubCache.repository(
                containing: "/h/hub/models--TinyLlama--TinyLlama-1.1B-Chat-v1.0/snapshots/abc/model.safetensors")
                == "TinyLlama/TinyLlama-1.1B-Chat-v1.0")
        #expect(
            HubCache.repository(containing: "/h/hub/models--meta-llama--Llama-2-7b-hf/snapshots/abc")
                == "meta-llama/Llama-2-7b-hf")
        #expect(HubCache.repository(containing: "/h/models--x/other") == nil)
        #expect(HubCache.repository(containing: "/data/llama") == nil)
    }
}
