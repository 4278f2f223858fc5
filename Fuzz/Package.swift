// swift-tools-version: 6.2
// libFuzzer targets, one per reader of untrusted bytes. Kept out of the main package so that its normal build
// never sees the sanitizer flags; build and run them with `scripts/fuzz` (docs/fuzzing.md).
import PackageDescription

let targets = [
    "FuzzSafetensors", "FuzzGGUF", "FuzzTorchZip", "FuzzUnpickler", "FuzzAdapterConfig", "FuzzQuantState",
    "FuzzGGUFBlocks", "FuzzSentencePiece", "FuzzLlamaConfig",
]

let package = Package(
    name: "nf4kit-fuzz",
    dependencies: [.package(name: "nf4kit", path: "..")],
    targets: targets.map { name in
        .executableTarget(
            name: name, dependencies: [.product(name: "NF4Kit", package: "nf4kit")], path: "Sources/\(name)")
    }
)
