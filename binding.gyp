{
  "targets": [
    {
      "target_name": "original_dst",
      "sources": [
        "src/core/original-dst.c"
      ],
      "cflags": [
        "-Wall",
        "-Wextra",
        "-Werror"
      ]
    },
    {
      "target_name": "relay",
      "sources": [
        "src/agent/native/relay-addon.c",
        "src/agent/native/relay.c",
        "src/agent/native/http-request-guard.c"
      ],
      "cflags": [
        "-Wall",
        "-Wextra",
        "-Werror"
      ],
      "libraries": [
        "-lpthread"
      ]
    }
  ]
}
