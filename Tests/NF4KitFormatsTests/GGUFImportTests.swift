import Foundation
import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// GGUF -> Hugging Face against transformers' own reading of the golden Q4_K_M.gguf (golden gguf-llama/llama-g
/// from-gguf/: `from_pretrained(..., gguf_file=...)` then `save_pretrained`, float32).
@Suite struct GGUFImportTests {
    static let gguf = Fixture.path("gguf-llama/gguf/Q4_K_M.gguf")
    static let golden = Fixture.path("gguf-llama/from-gguf")

    private func imported(dtype: DType = .f32) throws -> (TemporaryDirectory, String) {
        let dir = TemporaryDirectory("nf4kit-gguf-import")
        let out = dir.file("hf")
        _ = try GGUFImport.run(ggufPath: Self.gguf, outputPath: out, options: .init(dtype: dtype))
        return (dir, out)
    }

    @Test func `Q4_K_M imports to transformers' float32 tensors bit for bit, names back and q and k un-permuted`()
        throws
    {
        let (dir, out) = try imported()
        defer { dir.cleanup() }
        let ours = try SafetensorsReader.read(path: out + "/model.safetensors")
        let golden = try SafetensorsReader.read(path: Self.golden + "/model.safetensors")
        #expect(ours.tensors.map(\.name) == golden.tensors.map(\.name))
        let goldenByName = golden.tensorsByName
        for tensor in ours.tensors {
            let reference = try #require(goldenByName[tensor.name])
            #expect(tensor.dtype == .f32 && tensor.shape == reference.shape, "\(tensor.name)")
            #expect(tensor.bytes.array == reference.bytes.array, "\(tensor.name) differs from transformers' values")
        }
        // The whole file, header included, is what transformers wrote.
        let ourFile = try Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors"))
        let goldenFile = try Data(contentsOf: URL(fileURLWithPath: Self.golden + "/model.safetensors"))
        #expect(ourFile == goldenFile)
    }

    @Test func `config.json has transformers' keys and values`() throws {
        let (dir, out) = try imported()
        defer { dir.cleanup() }
        let ours = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/config.json")))
                as? NSDictionary)
        let golden = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: Self.golden + "/config.json"))) as? NSDictionary)
        let expected = golden.mutableCopy() as! NSMutableDictionary
        // transformers stamps its own version; nf4kit does not claim one.
        expected.removeObject(forKey: "transformers_version")
        #expect(ours == expected)
        let text = try String(contentsOfFile: out + "/config.json", encoding: .utf8)
        #expect(text.contains("\"rms_norm_eps\": 9.999999747378752e-06,"))
    }

    @Test func `the tokenizer files are the ones transformers wrote`() throws {
        let (dir, out) = try imported()
        defer { dir.cleanup() }
        for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] {
            let ours = try Data(contentsOf: URL(fileURLWithPath: out + "/" + name))
            let golden = try Data(contentsOf: URL(fileURLWithPath: Self.golden + "/" + name))
            #expect(ours == golden, "\(name)")
        }
    }

    @Test func `bf16 import is the float32 import rounded to nearest even`() throws {
        let (dir, out) = try imported(dtype: .bf16)
        defer { dir.cleanup() }
        let ours = try SafetensorsReader.read(path: out + "/model.safetensors")
        let golden = try SafetensorsReader.read(path: Self.golden + "/model.safetensors").tensorsByName
        for tensor in ours.tensors {
            let reference = try #require(golden[tensor.name]).bytes.elements(as: UInt32.self)
            let expected = reference.map { FloatConversion.bfloat16Bits(fromFloatBits: $0) }
            #expect(tensor.dtype == .bf16 && tensor.bytes.elements(as: UInt16.self) == expected, "\(tensor.name)")
        }
    }

    @Test func `the in-memory model has the folder's tensors and side files`() throws {
        let model = try GGUFImport.model(ggufPath: Self.gguf, dtype: .f32)
        let golden = try SafetensorsReader.read(path: Self.golden + "/model.safetensors").tensorsByName
        #expect(model.checkpoint.tensors.count == golden.count)
        for tensor in model.checkpoint.tensors {
            #expect(tensor.bytes.array == golden[tensor.name]?.bytes.array, "\(tensor.name)")
        }
        #expect(
            model.sideFiles.map(\.name) == [
                "config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
            ])
    }

    @Test func `the Hugging Face reader gives a Llama GGUF Hugging Face names and other GGUFs their own`() throws {
        let llama = try ModelSource.open(Self.gguf, gguf: .huggingFace).checkpoint
        #expect(llama.tensor(named: "model.layers.1.self_attn.q_proj.weight")?.shape == [256, 256])
        #expect(llama.tensor(named: "blk.1.attn_q.weight") == nil)
        let other = try ModelSource.open(Fixture.path("gguf/sample.gguf"), gguf: .huggingFace).checkpoint
        let plain = try GGUFBridge.readCheckpoint(path: Fixture.path("gguf/sample.gguf"))
        #expect(other.tensors.map(\.name) == plain.tensors.map(\.name))
    }

    @Test func `the inverse name map undoes the spec table and the row shuffle undoes the permutation`() throws {
        #expect(
            GGUFImport.Target(ggufName: "blk.1.attn_output.weight")?.name
                == "model.layers.1.self_attn.o_proj.weight")
        #expect(
            GGUFImport.Target(ggufName: "blk.0.ffn_norm.weight")?.name
                == "model.layers.0.post_attention_layernorm.weight")
        #expect(GGUFImport.Target(ggufName: "output.weight")?.name == "lm_head.weight")
        #expect(GGUFImport.Target(ggufName: "blk.01.attn_q.weight") == nil)
        #expect(GGUFImport.Target(ggufName: "rope_freqs.weight") == nil)
        // Spec section 2: HF row h*(rows/n) + p*(rows/n/2) + i sits at GGUF row h*(rows/n) + 2i + p. rows 8, n 2:
        // HF rows 0..<8 come from GGUF rows 0 2 1 3 4 6 5 7.
        let permutation = try #require(try? LlamaRowPermutation(rows: 8, heads: 2))
        #expect((0..<8).map { permutation.ggufRow(ofHFRow: $0) } == [0, 2, 1, 3, 4, 6, 5, 7])
        // One name table both ways.
        #expect(LlamaTensorNames.ggufName(hfName: "model.layers.0.self_attn.k_proj.bias") == "blk.0.attn_k.bias")
        #expect(GGUFImport.Target(ggufName: "blk.0.attn_k.bias")?.permutation == .key)
    }

    @Test func `a GGUF that is not Llama is refused with exit-65 code naming the key`() throws {
        let error = #expect(throws: CheckpointError.self) {
            _ = try GGUFImport.run(ggufPath: Fixture.path("gguf/sample.gguf"), outputPath: "/nonexistent/never")
        }
        #expect(error?.code.isDataError == true)
        #expect(error?.file == Fixture.path("gguf/sample.gguf"))
    }
}
