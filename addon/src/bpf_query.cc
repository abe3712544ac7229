// SPDX-License-Identifier: Apache-2.0
// exports.bpf inspection and removal: what is attached to a cgroup, detaching one
// program, reading a pinned link (to sweep defunct ones), program/map info, one map
// lookup (counters), and kernel feature probes for `weft check` and init.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "bpf_util.h"
#include "weft.h"

namespace weft {
namespace {

const bpf_attach_type kCgroupTypes[] = {BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT, BPF_CGROUP_SOCK_OPS,
                                        BPF_CGROUP_GETSOCKOPT};

struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

bool ParseAttachType(const std::string& s, bpf_attach_type* out) {
  for (auto t : kCgroupTypes) {
    const char* n = libbpf_bpf_attach_type_str(t);
    if (n && s == n) {
      *out = t;
      return true;
    }
  }
  return false;
}

Napi::Object ProgInfoObject(Napi::Env env, int fd) {
  bpf_prog_info pi{};
  uint32_t len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len)) throw BpfError(errno, "prog info", "fd " + std::to_string(fd));
  char tag[2 * BPF_TAG_SIZE + 1];
  for (int i = 0; i < BPF_TAG_SIZE; i++) snprintf(tag + 2 * i, 3, "%02x", pi.tag[i]);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", pi.id);
  o.Set("name", std::string(pi.name));
  o.Set("tag", std::string(tag));
  const char* type = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(pi.type));
  o.Set("type", type ? type : "unknown");
  std::vector<uint32_t> ids(pi.nr_map_ids);
  if (!ids.empty()) {
    bpf_prog_info again{};
    again.nr_map_ids = ids.size();
    again.map_ids = reinterpret_cast<uint64_t>(ids.data());
    len = sizeof(again);
    if (bpf_obj_get_info_by_fd(fd, &again, &len)) throw BpfError(errno, "prog info", "map ids");
  }
  Napi::Array maps = Napi::Array::New(env);
  for (uint32_t i = 0; i < ids.size(); i++) maps.Set(i, ids[i]);
  o.Set("mapIds", maps);
  return o;
}

std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* usage) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), usage);
  return info[i].As<Napi::String>();
}
uint32_t U32Arg(const Napi::CallbackInfo& info, size_t i, const char* usage) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), usage);
  return info[i].As<Napi::Number>().Uint32Value();
}

// query(cgroupPath) → [{ attachType, id, name, tag }] of the programs attached directly.
Napi::Value Query(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StringArg(info, 0, "usage: bpf.query(cgroupPath: string)");
  Fd cg(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (cg.fd < 0) throw BpfError(errno, "open cgroup", path).ToNapi(env);
  Napi::Array out = Napi::Array::New(env);
  for (auto t : kCgroupTypes) {
    uint32_t ids[64];
    uint32_t cnt = 64, flags = 0;
    if (bpf_prog_query(cg.fd, t, 0, &flags, ids, &cnt)) throw BpfError(errno, "query", path).ToNapi(env);
    for (uint32_t i = 0; i < cnt; i++) {
      Fd p(bpf_prog_get_fd_by_id(ids[i]));
      if (p.fd < 0) continue;  // detached meanwhile
      try {
        Napi::Object o = ProgInfoObject(env, p.fd);
        o.Set("attachType", libbpf_bpf_attach_type_str(t));
        out.Set(out.Length(), o);
      } catch (const BpfError& e) {
        throw e.ToNapi(env);
      }
    }
  }
  return out;
}

// detach(cgroupPath, attachType, progId)
Napi::Value Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "usage: bpf.detach(cgroupPath: string, attachType: string, progId: number)";
  std::string path = StringArg(info, 0, usage);
  std::string typeName = StringArg(info, 1, usage);
  uint32_t id = U32Arg(info, 2, usage);
  bpf_attach_type type;
  if (!ParseAttachType(typeName, &type)) throw Napi::TypeError::New(env, std::string(usage) + ": unknown attachType " + typeName);
  Fd cg(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (cg.fd < 0) throw BpfError(errno, "open cgroup", path).ToNapi(env);
  Fd p(bpf_prog_get_fd_by_id(id));
  if (p.fd < 0) throw BpfError(errno, "prog by id", std::to_string(id)).ToNapi(env);
  if (bpf_prog_detach2(p.fd, cg.fd, type)) throw BpfError(errno, "detach", typeName + " " + std::to_string(id)).ToNapi(env);
  return env.Undefined();
}

// linkInfo(pinPath) → { id, progId, type, netnsIno } | null when nothing is pinned there.
Napi::Value LinkInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StringArg(info, 0, "usage: bpf.linkInfo(pinPath: string)");
  Fd l(bpf_obj_get(path.c_str()));
  if (l.fd < 0) {
    if (errno == ENOENT) return env.Null();
    throw BpfError(errno, "bpf_obj_get", path).ToNapi(env);
  }
  bpf_link_info li{};
  uint32_t len = sizeof(li);
  if (bpf_obj_get_info_by_fd(l.fd, &li, &len)) throw BpfError(errno, "link info", path).ToNapi(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", li.id);
  o.Set("progId", li.prog_id);
  const char* type = libbpf_bpf_link_type_str(static_cast<bpf_link_type>(li.type));
  o.Set("type", type ? type : "unknown");
  o.Set("netnsIno", li.type == BPF_LINK_TYPE_NETNS ? li.netns.netns_ino : 0);
  return o;
}

// progInfo(id) → { id, name, tag, type, mapIds } | null when no such program.
Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = U32Arg(info, 0, "usage: bpf.progInfo(id: number)");
  Fd p(bpf_prog_get_fd_by_id(id));
  if (p.fd < 0) {
    if (errno == ENOENT) return env.Null();
    throw BpfError(errno, "prog by id", std::to_string(id)).ToNapi(env);
  }
  try {
    return ProgInfoObject(env, p.fd);
  } catch (const BpfError& e) {
    throw e.ToNapi(env);
  }
}

// mapInfo(id) → { id, name, type, keySize, valueSize, maxEntries } | null.
Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = U32Arg(info, 0, "usage: bpf.mapInfo(id: number)");
  Fd m(bpf_map_get_fd_by_id(id));
  if (m.fd < 0) {
    if (errno == ENOENT) return env.Null();
    throw BpfError(errno, "map by id", std::to_string(id)).ToNapi(env);
  }
  bpf_map_info mi{};
  uint32_t len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(m.fd, &mi, &len)) throw BpfError(errno, "map info", std::to_string(id)).ToNapi(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", mi.id);
  o.Set("name", std::string(mi.name));
  const char* type = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(mi.type));
  o.Set("type", type ? type : "unknown");
  o.Set("keySize", mi.key_size);
  o.Set("valueSize", mi.value_size);
  o.Set("maxEntries", mi.max_entries);
  return o;
}

// mapLookup(id, key) → Buffer | null. Per-CPU maps return every CPU's value, each padded
// to 8 bytes, one after the other.
Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "usage: bpf.mapLookup(id: number, key: Buffer)";
  uint32_t id = U32Arg(info, 0, usage);
  if (info.Length() < 2 || !info[1].IsBuffer()) throw Napi::TypeError::New(env, usage);
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  Fd m(bpf_map_get_fd_by_id(id));
  if (m.fd < 0) throw BpfError(errno, "map by id", std::to_string(id)).ToNapi(env);
  bpf_map_info mi{};
  uint32_t len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(m.fd, &mi, &len)) throw BpfError(errno, "map info", std::to_string(id)).ToNapi(env);
  if (key.Length() != mi.key_size) throw Napi::TypeError::New(env, std::string(usage) + ": key must be " + std::to_string(mi.key_size) + " bytes");
  bool perCpu = mi.type == BPF_MAP_TYPE_PERCPU_ARRAY || mi.type == BPF_MAP_TYPE_PERCPU_HASH || mi.type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
  size_t size = perCpu ? ((mi.value_size + 7) / 8 * 8) * libbpf_num_possible_cpus() : mi.value_size;
  std::vector<uint8_t> value(size);
  if (bpf_map_lookup_elem(m.fd, key.Data(), value.data())) {
    if (errno == ENOENT) return env.Null();
    throw BpfError(errno, "map lookup", std::string(mi.name)).ToNapi(env);
  }
  return Napi::Buffer<uint8_t>::Copy(env, value.data(), value.size());
}

// Whether programs of `type` (attached as `attach`) may call helper `fn`: loads a tiny
// program that calls it, as libbpf_probe_bpf_helper does, but with the expected attach type
// set for every hook weft uses. The call's arguments are left unset, so the verifier
// refuses the program either way; only its reason tells: an unknown or disallowed helper is
// named as such, anything else (a bad argument) means the helper exists for this type.
bool ProbeHelper(bpf_prog_type type, bpf_attach_type attach, bpf_func_id fn) {
  const bpf_insn insns[] = {
      {BPF_JMP | BPF_CALL, 0, 0, 0, static_cast<int32_t>(fn)},
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  char log[4096] = "";
  LIBBPF_OPTS(bpf_prog_load_opts, opts);
  opts.expected_attach_type = attach;
  opts.log_level = 1;
  opts.log_size = sizeof(log);
  opts.log_buf = log;
  int fd = bpf_prog_load(type, nullptr, "Dual BSD/GPL", insns, sizeof(insns) / sizeof(insns[0]), &opts);
  if (fd >= 0) {
    close(fd);
    return true;
  }
  if (log[0] == '\0') return false;  // the program type itself was refused
  return strstr(log, "invalid func ") == nullptr && strstr(log, "unknown func ") == nullptr &&
         strstr(log, "program of this type cannot use helper ") == nullptr;
}

struct HelperProbe {
  const char* hook;  // as the error names it
  bpf_prog_type type;
  bpf_attach_type attach;
  bpf_func_id fn;
  const char* name;
};

// The helpers each program calls beyond the base set (map lookup/update/delete).
const HelperProbe kHelpers[] = {
    {"cgroup/connect4", BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT, BPF_FUNC_get_current_uid_gid, "get_current_uid_gid"},
    {"cgroup/connect4", BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT, BPF_FUNC_sk_storage_get, "sk_storage_get"},
    {"cgroup/connect6", BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_CONNECT, BPF_FUNC_sk_storage_get, "sk_storage_get"},
    {"sockops", BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS, BPF_FUNC_sk_storage_get, "sk_storage_get"},
    {"sockops", BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS, BPF_FUNC_sk_storage_delete, "sk_storage_delete"},
    {"sockops", BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS, BPF_FUNC_sock_map_update, "sock_map_update"},
    {"sockops", BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS, BPF_FUNC_sock_hash_update, "sock_hash_update"},
    {"cgroup/getsockopt", BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_CGROUP_GETSOCKOPT, BPF_FUNC_get_current_uid_gid, "get_current_uid_gid"},
    {"cgroup/getsockopt", BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_CGROUP_GETSOCKOPT, BPF_FUNC_sk_storage_get, "sk_storage_get"},
    {"sk_lookup", BPF_PROG_TYPE_SK_LOOKUP, BPF_SK_LOOKUP, BPF_FUNC_sk_assign, "sk_assign"},
    {"sk_lookup", BPF_PROG_TYPE_SK_LOOKUP, BPF_SK_LOOKUP, BPF_FUNC_sk_release, "sk_release"},
    {"sk_msg", BPF_PROG_TYPE_SK_MSG, BPF_SK_MSG_VERDICT, BPF_FUNC_msg_redirect_hash, "msg_redirect_hash"},
};

// probe() → { [progType | mapType | "helper <name> in <hook>"]: boolean } for everything
// weft's programs need (pkg/intercept/ebpf decides which of them a run needs).
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bpf_prog_type types[] = {BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_PROG_TYPE_SOCK_OPS, BPF_PROG_TYPE_CGROUP_SOCKOPT,
                                 BPF_PROG_TYPE_SK_LOOKUP, BPF_PROG_TYPE_SK_MSG};
  Napi::Object o = Napi::Object::New(env);
  for (auto t : types) o.Set(libbpf_bpf_prog_type_str(t), libbpf_probe_bpf_prog_type(t, nullptr) == 1);
  const bpf_map_type maps[] = {BPF_MAP_TYPE_SOCKMAP, BPF_MAP_TYPE_SOCKHASH, BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_LRU_HASH,
                               BPF_MAP_TYPE_SK_STORAGE, BPF_MAP_TYPE_PERCPU_ARRAY};
  for (auto t : maps) o.Set(libbpf_bpf_map_type_str(t), libbpf_probe_bpf_map_type(t, nullptr) == 1);
  for (const auto& h : kHelpers) o.Set(std::string("helper ") + h.name + " in " + h.hook, ProbeHelper(h.type, h.attach, h.fn));
  return o;
}

}  // namespace

void InitBpfQuery(Napi::Env env, Napi::Object bpf) {
  bpf.Set("query", Napi::Function::New(env, Query, "query"));
  bpf.Set("detach", Napi::Function::New(env, Detach, "detach"));
  bpf.Set("linkInfo", Napi::Function::New(env, LinkInfo, "linkInfo"));
  bpf.Set("progInfo", Napi::Function::New(env, ProgInfo, "progInfo"));
  bpf.Set("mapInfo", Napi::Function::New(env, MapInfo, "mapInfo"));
  bpf.Set("mapLookup", Napi::Function::New(env, MapLookup, "mapLookup"));
  bpf.Set("probe", Napi::Function::New(env, Probe, "probe"));
}

}  // namespace weft
