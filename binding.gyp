{
  "targets": [
    {
      "target_name": "original_dst",
      "sources": ["src/core/original-dst.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror"]
    }
  ]
}
