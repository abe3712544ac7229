{
  "targets": [
    {
      "target_name": "weft_native",
      "sources": [
        "src/addon.cc",
        "src/sockets.cc",
        "src/relay.cc",
        "src/loop.cc",
        "src/conn.cc",
        "src/pool.cc",
        "src/sock_util.cc",
        "src/bpf.cc",
        "src/bpf_query.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "libraries": ["-lbpf"],
      "cflags_cc": [
        "-std=c++20", "-O2", "-Wall", "-Wextra", "-Wformat", "-Wformat-security",
        "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-fPIC", "-D_GLIBCXX_ASSERTIONS",
        "<!@(for f in -fstack-clash-protection -fcf-protection; do echo 'int main(){}' | ${CXX:-g++} -x c++ -Werror $f - -o /dev/null 2>/dev/null && echo $f; done; true)"
      ],
      "ldflags": ["-Wl,-z,relro", "-Wl,-z,now", "-Wl,-z,noexecstack"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
