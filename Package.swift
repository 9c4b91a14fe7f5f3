// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "convoy",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "convoy", targets: ["convoy"]),
        .executable(name: "convoy-bench", targets: ["ConvoyBench"]),
        .executable(name: "convoy-csi-bench", targets: ["ConvoyCSIBench"]),
        .executable(name: "convoy-fuzz", targets: ["ConvoyFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // libfuse3 through pkg-config; the shim header fixes FUSE_USE_VERSION.
        .systemLibrary(name: "CFuse", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        // zlib, to read Convoy 0.5's gzip blocks (migration).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libzstd for block compression.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // libxxhash: XXH3-128, the checksum manifests record per block, verified on every read.
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        // Domain types and protocols shared by every other target: names, sizes, errors, the driver protocol,
        // the client API's wire types.
        .target(name: "ConvoyCore", dependencies: ["CLinux"]),
        // The FUSE bridge (BackupFS): a backup's tree as a read-only filesystem, blocks fetched on demand.
        .target(name: "BackupFS", dependencies: ["CFuse", "ConvoyCore", "Backupstore"]),
        // The four storage drivers and their shared helpers.
        .target(name: "Drivers", dependencies: [
            "ConvoyCore", "AWS",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // CSI v1.9's messages and gRPC services: csi.proto and the Swift generated from it (scripts/generate-csi).
        .target(name: "CSIProtocol", dependencies: [
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ], exclude: ["csi.proto"]),
        // The daemon: state store, volume service with mount references, the Docker and client HTTP APIs, CSI.
        .target(name: "Plugin", dependencies: [
            "ConvoyCore", "Drivers", "BackupFS", "Backupstore", "AWS", "CLinux", "CSIProtocol",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // The backup store: object stores (directory, S3), content-addressed blocks, file-tree backups, restore,
        // verify, garbage collection.
        // Linux calls Glibc's overlay lacks (xattrs, SEEK_DATA/SEEK_HOLE).
        .target(name: "CLinux"),
        .target(name: "Backupstore", dependencies: [
            "ConvoyCore", "CZstd", "CXXHash", "CZlib", "CLinux", "AWS",
            .product(name: "Crypto", package: "swift-crypto"),
            // scrypt, to derive the key that wraps an encrypted store's master key from a passphrase.
            .product(name: "_CryptoExtras", package: "swift-crypto"),
        ]),
        // A small blocking HTTP/1.1 client over UNIX sockets, used by the CLI, the tests and the benchmark.
        .target(name: "ConvoyClient", dependencies: ["ConvoyCore"]),
        // S3 client, SigV4 signer and credentials, written here: no Swift AWS SDK is available. HTTP goes through
        // AsyncHTTPClient (SwiftNIO, TLS built in), not URLSession: FoundationNetworking brings libcurl and some 30
        // shared libraries that every start of the CLI had to load.
        .target(name: "AWS", dependencies: [
            "ConvoyCore",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // The one binary: daemon and CLI.
        .executableTarget(name: "convoy", dependencies: [
            "ConvoyCore", "ConvoyClient", "Plugin",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Load generator for the plugin socket (bench/).
        .executableTarget(name: "ConvoyBench", dependencies: [
            "ConvoyClient",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "bench/Sources/ConvoyBench"),
        // CSI figures (bench/csi.sh): NodePublish latency, NodeGetVolumeStats rate, lazy against full restores.
        .executableTarget(name: "ConvoyCSIBench", dependencies: [
            "CSIProtocol",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
        ], path: "bench/Sources/ConvoyCSIBench"),
        // libFuzzer targets for the decoders of store objects (scripts/fuzz builds it with -DFUZZING); built
        // without it, a runner that replays inputs through the same targets.
        .executableTarget(name: "ConvoyFuzz", dependencies: ["Backupstore", "BackupFS", "ConvoyCore"]),

        .testTarget(name: "ConvoyCoreTests", dependencies: ["ConvoyCore"]),
        // Test trees shared by the test targets.
        .target(name: "ConvoyTestSupport", dependencies: [
            "CLinux", .product(name: "Crypto", package: "swift-crypto"),
        ], path: "Tests/ConvoyTestSupport"),
        .testTarget(name: "BackupFSTests", dependencies: [
            "BackupFS", "Backupstore", "ConvoyCore", "CLinux", "ConvoyTestSupport",
        ]),
        .testTarget(name: "DriversTests", dependencies: [
            "Drivers", "ConvoyCore", "AWS", "CLinux", "ConvoyTestSupport",
        ]),
        .testTarget(name: "BackupstoreTests", dependencies: [
            "Backupstore", "ConvoyCore", "CLinux", "AWS", "ConvoyTestSupport",
            .product(name: "Crypto", package: "swift-crypto"),
        ], exclude: ["FuzzRegressions"]),
        .testTarget(name: "PluginTests", dependencies: [
            "Plugin", "Drivers", "ConvoyCore", "Backupstore", "ConvoyTestSupport",
        ]),
        .testTarget(name: "IntegrationTests", dependencies: [
            "ConvoyClient", "ConvoyCore", "AWS", "convoy", "ConvoyTestSupport", "CSIProtocol",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
        ]),
        .testTarget(name: "AWSTests", dependencies: ["AWS", "ConvoyCore"]),
    ]
)
