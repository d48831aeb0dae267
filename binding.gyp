{
  "targets": [
    {
      "target_name": "netboot_net",
      "sources": ["native/netboot_net.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
