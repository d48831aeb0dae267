/**
 * Schematic IDs from the real implementation, for tests and the stand-in
 * factory (which must answer IDs it did not compute with our code).
 *
 * Each `id` and `yaml` was produced by image-factory's own rule
 * (pkg/schematic/schematic.go: ID = sha256 of yaml.Marshal of the Schematic
 * struct) run in Go against go.yaml.in/yaml/v4 (github.com/yaml/go-yaml at
 * 1c17b9c, the library the factory pins), with the Schematic/Customization
 * struct definitions copied field for field from the factory. The first one
 * is also the factory's own test vector (TestID "empty") and DESIGN §4's
 * default schematic. The factory's other test vectors (pkg/schematic/schematic_test.go):
 * extraKernelArgs [noapic, nolapic] → 9cba8e32…, meta [{key 10, value foo}] → d308a2a5….
 */
export interface SchematicVector {
  name: string;
  customization: Record<string, unknown>;
  id: string;
  yaml: string;
}

export const SCHEMATIC_VECTORS: SchematicVector[] = [
  {
    "name": "empty (default schematic)",
    "customization": {},
    "id": "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba",
    "yaml": "customization: {}\n"
  },
  {
    "name": "qemu-guest-agent",
    "customization": {
      "systemExtensions": {
        "officialExtensions": [
          "siderolabs/qemu-guest-agent"
        ]
      }
    },
    "id": "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515",
    "yaml": "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/qemu-guest-agent\n"
  },
  {
    "name": "qemu-guest-agent + iscsi-tools",
    "customization": {
      "systemExtensions": {
        "officialExtensions": [
          "siderolabs/qemu-guest-agent",
          "siderolabs/iscsi-tools"
        ]
      }
    },
    "id": "6ebbfe35c8225645c05d4d19eaad385bd1ec795954932d0ada671388272fec19",
    "yaml": "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/qemu-guest-agent\n            - siderolabs/iscsi-tools\n"
  },
  {
    "name": "the same extensions in the other order",
    "customization": {
      "systemExtensions": {
        "officialExtensions": [
          "siderolabs/iscsi-tools",
          "siderolabs/qemu-guest-agent"
        ]
      }
    },
    "id": "dc7b152cb3ea99b821fcb7340ce7168313ce393d663740b791c36f6e95fc8586",
    "yaml": "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/iscsi-tools\n            - siderolabs/qemu-guest-agent\n"
  },
  {
    "name": "extensions + extraKernelArgs",
    "customization": {
      "extraKernelArgs": [
        "net.ifnames=0",
        "console=ttyS0,115200"
      ],
      "systemExtensions": {
        "officialExtensions": [
          "siderolabs/qemu-guest-agent",
          "siderolabs/iscsi-tools"
        ]
      }
    },
    "id": "c0e047c6377543838cc6ca33b785cfda7c839a10237ca81b5dae29f7d8cfdfbd",
    "yaml": "customization:\n    extraKernelArgs:\n        - net.ifnames=0\n        - console=ttyS0,115200\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/qemu-guest-agent\n            - siderolabs/iscsi-tools\n"
  },
  {
    "name": "strings that need quoting",
    "customization": {
      "extraKernelArgs": [
        "-console",
        "yes",
        "1.5",
        "0x10",
        "2024-01-02",
        "on",
        "~",
        "#x"
      ],
      "meta": [
        {
          "key": 1,
          "value": " lead"
        },
        {
          "key": 2,
          "value": "a: b"
        },
        {
          "key": 3,
          "value": "x #y"
        },
        {
          "key": 4,
          "value": "tab\there"
        }
      ]
    },
    "id": "a3c4c4aa42d5e506c99e370e983328f3f136a214dbeb6b8278823d73c38a76be",
    "yaml": "customization:\n    extraKernelArgs:\n        - -console\n        - 'yes'\n        - \"1.5\"\n        - \"0x10\"\n        - \"2024-01-02\"\n        - 'on'\n        - \"~\"\n        - '#x'\n    meta:\n        - key: 1\n          value: ' lead'\n        - key: 2\n          value: 'a: b'\n        - key: 3\n          value: 'x #y'\n        - key: 4\n          value: \"tab\\there\"\n"
  },
  {
    "name": "multi-line META value (literal block)",
    "customization": {
      "meta": [
        {
          "key": 10,
          "value": "addresses:\n  - address: 192.168.77.10/24\n    linkName: eth0\nroutes:\n  - gateway: 192.168.77.1\n"
        },
        {
          "key": 12,
          "value": ""
        }
      ]
    },
    "id": "b006d6c6d6bc994c4e345965c9a7490b1589ed6f5b15ad0bad13316f0e82ba29",
    "yaml": "customization:\n    meta:\n        - key: 10\n          value: |\n            addresses:\n              - address: 192.168.77.10/24\n                linkName: eth0\n            routes:\n              - gateway: 192.168.77.1\n        - key: 12\n          value: \"\"\n"
  },
  {
    "name": "leading space and trailing blank lines (|4+)",
    "customization": {
      "embeddedMachineConfiguration": "  indented first line\nsecond\n\n",
      "extraKernelArgs": [
        "talos.platform=metal"
      ]
    },
    "id": "fb353920c2c86d560ab15d5058e3800559f3d5120b84577242a3f0fbef6a51c0",
    "yaml": "customization:\n    embeddedMachineConfiguration: |4+\n          indented first line\n        second\n\n    extraKernelArgs:\n        - talos.platform=metal\n"
  },
  {
    "name": "bootloader, secureboot, disk image; empty lists omitted",
    "customization": {
      "bootloader": "sd-boot",
      "secureboot": {
        "enrollKeys": "force",
        "includeWellKnownCertificates": true
      },
      "diskImage": {
        "sectorSize": 4096
      },
      "systemExtensions": {
        "officialExtensions": []
      },
      "extraKernelArgs": []
    },
    "id": "8983a43e61c81d12b2db370407e47b110ae30519349eb5a728babd3366e96e82",
    "yaml": "customization:\n    bootloader: sd-boot\n    secureboot:\n        enrollKeys: force\n        includeWellKnownCertificates: true\n    diskImage:\n        sectorSize: 4096\n"
  },
  {
    "name": "escapes in double quotes (BOM first: everything escaped)",
    "customization": {
      "extraKernelArgs": [
        "quote\"d",
        "back\\slash",
        "\ufeffbom",
        "caf\u00e9",
        "emoji\u{1f600}",
        "nul\u0000"
      ]
    },
    "id": "fc12cb9ea31ff39ff409847e4039d5fee5115fb8a97b195a80be46f60eeb1562",
    "yaml": "customization:\n    extraKernelArgs:\n        - quote\"d\n        - back\\slash\n        - \"\\uFEFF\\x62\\x6F\\x6D\"\n        - caf\u00e9\n        - \"emoji\\U0001F600\"\n        - \"nul\\0\"\n"
  }
];

/** image-factory pkg/schematic/schematic_test.go TestID. */
export const FACTORY_TEST_VECTORS: SchematicVector[] = [
  { name: "config1", customization: { extraKernelArgs: ["noapic", "nolapic"] }, id: "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c", yaml: "customization:\n    extraKernelArgs:\n        - noapic\n        - nolapic\n" },
  { name: "meta", customization: { meta: [{ key: 10, value: "foo" }] }, id: "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f", yaml: "customization:\n    meta:\n        - key: 10\n          value: foo\n" },
  { name: "secureboot", customization: { secureboot: { includeWellKnownCertificates: true } }, id: "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6", yaml: "customization:\n    secureboot:\n        includeWellKnownCertificates: true\n" },
  { name: "4k sector disk image", customization: { diskImage: { sectorSize: 4096 } }, id: "92833e9ddd9bb9e11b2464fa5525429f01866306d52ebd882ee08d7918f6d1ea", yaml: "customization:\n    diskImage:\n        sectorSize: 4096\n" },
];
