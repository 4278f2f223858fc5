// swift-tools-version: 6.2
import PackageDescription

let settings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "nf4kit",
    products: [
        .library(name: "NF4Kit", targets: ["NF4Kit"]),
        .executable(name: "nf4kit", targets: ["nf4kit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "NF4KitCore", swiftSettings: settings),
        // AVX2 + F16C block kernels with per-function target attributes and a runtime CPU check (docs/architecture.md).
        .target(name: "CNF4Kernels"),
        .target(name: "NF4KitFormats", dependencies: ["NF4KitCore", "CZlib"], swiftSettings: settings),
        .target(
            name: "NF4KitQuant",
            dependencies: ["NF4KitCore", "CNF4Kernels"],
            swiftSettings: settings
        ),
        .target(
            name: "NF4KitMerge",
            dependencies: ["NF4KitCore", "NF4KitQuant", "CNF4Kernels"],
            swiftSettings: settings
        ),
        .target(
            name: "NF4KitInspect",
            dependencies: [
                "NF4KitCore", "NF4KitFormats", "NF4KitQuant", .product(name: "RealModule", package: "swift-numerics"),
            ],
            swiftSettings: settings
        ),
        .target(
            name: "NF4Kit",
            dependencies: ["NF4KitCore", "NF4KitFormats", "NF4KitQuant", "NF4KitMerge", "NF4KitInspect"],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "nf4kit",
            dependencies: ["NF4Kit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "nf4kit-kernel-bench", dependencies: ["NF4KitCore", "NF4KitQuant", "NF4KitMerge"],
            path: "Benchmarks/KernelBench",
            swiftSettings: settings
        ),

        .target(
            name: "NF4KitFixtures",
            path: "Fixtures",
            exclude: ["generate", "README.md"],
            resources: [.copy("files")],
            swiftSettings: settings
        ),
        .target(
            name: "NF4KitTestSupport",
            dependencies: ["NF4Kit", "NF4KitFixtures"],
            path: "Tests/NF4KitTestSupport",
            swiftSettings: settings
        ),
        .testTarget(
            name: "NF4KitCoreTests", dependencies: ["NF4KitCore", "NF4KitTestSupport"], swiftSettings: settings),
        .testTarget(
            name: "NF4KitFormatsTests",
            dependencies: ["NF4KitFormats", "NF4KitTestSupport"],
            swiftSettings: settings
        ),
        .testTarget(
            name: "NF4KitQuantTests", dependencies: ["NF4KitQuant", "NF4KitTestSupport"], swiftSettings: settings),
        .testTarget(
            name: "NF4KitMergeTests", dependencies: ["NF4KitMerge", "NF4KitTestSupport"], swiftSettings: settings),
        .testTarget(
            name: "NF4KitInspectTests",
            dependencies: ["NF4KitInspect", "NF4KitTestSupport"],
            swiftSettings: settings
        ),
        // End-to-end pipeline runs (convert, merge, GGUF bridge) against the golden files, apart from the module tests.
        .testTarget(
            name: "NF4KitPipelineTests", dependencies: ["NF4Kit", "NF4KitTestSupport"], swiftSettings: settings),
        .testTarget(name: "NF4KitCLITests", dependencies: ["NF4KitTestSupport"], swiftSettings: settings),
    ]
)
