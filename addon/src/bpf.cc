// SPDX-License-Identifier: Apache-2.0
// exports.bpf: the libbpf loader of weft's eBPF interception (pkg/intercept/ebpf decides
// what to do; this file only does it). `load` opens every object, shares the maps between
// them, writes the runtime config into .rodata, loads, fills the config maps and attaches
// the programs in the order of the objects given — all or nothing: any failure detaches
// and unpins what this call attached.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "bpf_util.h"
#include "weft.h"

namespace weft {
namespace {

// libbpf's messages (verifier log included) go here so a failure can name its cause.
std::string g_libbpf_log;
int CaptureLibbpfLog(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::string buf(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(buf.data(), buf.size(), fmt, args);
  buf.resize(static_cast<size_t>(n));
  g_libbpf_log.append(buf);
  if (g_libbpf_log.size() > 256 * 1024) g_libbpf_log.erase(0, g_libbpf_log.size() - 128 * 1024);
  return n;
}

std::string LogTail() {
  const size_t max = 1500;
  std::string s = g_libbpf_log.size() > max ? "…" + g_libbpf_log.substr(g_libbpf_log.size() - max) : g_libbpf_log;
  return s.empty() ? "" : ("\nlibbpf: " + s);
}

struct Attached {
  int progFd;
  int targetFd;
  bpf_attach_type type;
};

struct LoadState {
  std::vector<bpf_object*> objects;
  std::map<std::string, int> sharedMaps;  // map name → fd (owned by the first object)
  std::vector<Attached> attached;
  int cgroupFd = -1;
  int netnsFd = -1;
  int linkFd = -1;
  std::string pinned;
  std::vector<std::string> mapPins;
  ~LoadState() {
    for (auto* o : objects) bpf_object__close(o);
    if (cgroupFd >= 0) close(cgroupFd);
    if (netnsFd >= 0) close(netnsFd);
    if (linkFd >= 0) close(linkFd);
  }
  void Rollback() {
    for (auto it = attached.rbegin(); it != attached.rend(); ++it) bpf_prog_detach2(it->progFd, it->targetFd, it->type);
    attached.clear();
    if (!pinned.empty()) unlink(pinned.c_str());
    pinned.clear();
    for (auto& p : mapPins) unlink(p.c_str());
    mapPins.clear();
  }
};

// Copies `cfg` over the `weft_cfg` variable of the object's .rodata (found through BTF, so
// the offset is never assumed).
void WriteConfig(bpf_object* obj, const std::string& objPath, const uint8_t* cfg, size_t cfgLen) {
  bpf_map* rodata = nullptr;
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    const char* n = bpf_map__name(m);
    if (bpf_map__is_internal(m) && strstr(n, ".rodata") != nullptr && strstr(n, ".rodata.") == nullptr) rodata = m;
  }
  btf* b = bpf_object__btf(obj);
  if (rodata == nullptr || b == nullptr) throw BpfError("ENOENT", "open", objPath + ": no .rodata/BTF (weft_cfg missing)");
  int sec = btf__find_by_name_kind(b, ".rodata", BTF_KIND_DATASEC);
  if (sec < 0) throw BpfError("ENOENT", "open", objPath + ": no .rodata datasec in BTF");
  const btf_type* t = btf__type_by_id(b, sec);
  const btf_var_secinfo* vs = btf_var_secinfos(t);
  for (int i = 0; i < btf_vlen(t); i++, vs++) {
    const btf_type* var = btf__type_by_id(b, vs->type);
    if (strcmp(btf__name_by_offset(b, var->name_off), "weft_cfg") != 0) continue;
    if (vs->size != cfgLen) {
      throw BpfError("EINVAL", "open", objPath + ": weft_cfg is " + std::to_string(vs->size) + " bytes, config buffer is " + std::to_string(cfgLen));
    }
    size_t size = 0;
    const void* init = bpf_map__initial_value(rodata, &size);
    std::vector<uint8_t> data(static_cast<const uint8_t*>(init), static_cast<const uint8_t*>(init) + size);
    memcpy(data.data() + vs->offset, cfg, cfgLen);
    int err = bpf_map__set_initial_value(rodata, data.data(), data.size());
    if (err) throw BpfError(-err, "open", objPath + ": set .rodata");
    return;
  }
  throw BpfError("ENOENT", "open", objPath + ": no weft_cfg variable");
}

std::string AttachTypeName(bpf_attach_type t) {
  const char* s = libbpf_bpf_attach_type_str(t);
  return s ? s : std::to_string(static_cast<int>(t));
}

Napi::Value Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage =
      "usage: bpf.load({ objects: string[] (in attach order), cgroupPath, netnsPath: string|null, linkPinPath: string|null, "
      "sockhashPinPath: string|null, rodata: Buffer, "
      "maxEntries: {[map]: n}, mapEntries: [{ map, key: Buffer, value: Buffer }] })";
  if (info.Length() != 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, usage);
  Napi::Object spec = info[0].As<Napi::Object>();
  if (!spec.Get("objects").IsArray() || !spec.Get("cgroupPath").IsString() || !spec.Get("rodata").IsBuffer() ||
      !spec.Get("maxEntries").IsObject() || !spec.Get("mapEntries").IsArray()) {
    throw Napi::TypeError::New(env, usage);
  }
  auto objects = spec.Get("objects").As<Napi::Array>();
  auto rodata = spec.Get("rodata").As<Napi::Buffer<uint8_t>>();
  auto maxEntries = spec.Get("maxEntries").As<Napi::Object>();
  auto mapEntries = spec.Get("mapEntries").As<Napi::Array>();
  std::string cgroupPath = spec.Get("cgroupPath").As<Napi::String>();
  Napi::Value netnsV = spec.Get("netnsPath");
  Napi::Value pinV = spec.Get("linkPinPath");
  Napi::Value sockhashPinV = spec.Get("sockhashPinPath");
  std::string sockhashPin = sockhashPinV.IsString() ? sockhashPinV.As<Napi::String>().Utf8Value() : "";
  std::string netnsPath = netnsV.IsString() ? netnsV.As<Napi::String>().Utf8Value() : "";
  std::string pinPath = pinV.IsString() ? pinV.As<Napi::String>().Utf8Value() : "";

  g_libbpf_log.clear();
  libbpf_set_print(CaptureLibbpfLog);
  LoadState st;
  Napi::Object result = Napi::Object::New(env);
  Napi::Array progsOut = Napi::Array::New(env);
  Napi::Array mapsOut = Napi::Array::New(env);
  try {
    st.cgroupFd = open(cgroupPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st.cgroupFd < 0) throw BpfError(errno, "open cgroup", cgroupPath);

    for (uint32_t i = 0; i < objects.Length(); i++) {
      std::string path = objects.Get(i).As<Napi::String>();
      bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr);
      if (obj == nullptr) throw BpfError(errno, "open", path + LogTail());
      st.objects.push_back(obj);
      WriteConfig(obj, path, rodata.Data(), rodata.Length());
      bpf_map* m;
      bpf_object__for_each_map(m, obj) {
        if (bpf_map__is_internal(m)) continue;
        std::string name = bpf_map__name(m);
        auto shared = st.sharedMaps.find(name);
        if (shared != st.sharedMaps.end()) {
          int err = bpf_map__reuse_fd(m, shared->second);
          if (err) throw BpfError(-err, "reuse map", name);
        } else if (maxEntries.Has(name)) {
          int err = bpf_map__set_max_entries(m, maxEntries.Get(name).As<Napi::Number>().Uint32Value());
          if (err) throw BpfError(-err, "size map", name);
        }
      }
      int err = bpf_object__load(obj);
      if (err) throw BpfError(-err, "load", path + " (the verifier or kernel refused it)" + LogTail());
      bpf_object__for_each_map(m, obj) {
        if (bpf_map__is_internal(m)) continue;
        std::string name = bpf_map__name(m);
        if (st.sharedMaps.count(name) == 0) {
          st.sharedMaps[name] = bpf_map__fd(m);
          bpf_map_info mi{};
          uint32_t len = sizeof(mi);
          bpf_obj_get_info_by_fd(bpf_map__fd(m), &mi, &len);
          Napi::Object o = Napi::Object::New(env);
          o.Set("name", name);
          o.Set("id", mi.id);
          mapsOut.Set(mapsOut.Length(), o);
        }
      }
    }

    for (uint32_t i = 0; i < mapEntries.Length(); i++) {
      Napi::Object e = mapEntries.Get(i).As<Napi::Object>();
      std::string name = e.Get("map").As<Napi::String>();
      auto key = e.Get("key").As<Napi::Buffer<uint8_t>>();
      auto value = e.Get("value").As<Napi::Buffer<uint8_t>>();
      auto fd = st.sharedMaps.find(name);
      if (fd == st.sharedMaps.end()) throw BpfError("ENOENT", "fill map", name + " is in no object");
      if (bpf_map_update_elem(fd->second, key.Data(), value.Data(), BPF_ANY)) throw BpfError(errno, "fill map", name);
    }

    // Attach in the order of `objects`: the plan (pkg/intercept/ebpf/plan.ts) owns it, so
    // that --dry-run prints the sequence this loop follows.
    std::vector<bpf_program*> progs;
    for (auto* obj : st.objects) {
      bpf_program* p;
      bpf_object__for_each_program(p, obj) progs.push_back(p);
    }
    for (auto* p : progs) {
      bpf_attach_type type = bpf_program__expected_attach_type(p);
      int fd = bpf_program__fd(p);
      std::string name = bpf_program__name(p);
      std::string target;
      if (type == BPF_SK_MSG_VERDICT) {
        auto m = st.sharedMaps.find("local_socks");
        if (m == st.sharedMaps.end()) throw BpfError("ENOENT", "attach", name + ": no local_socks map");
        // A sockhash drops its attached programs when its last user reference goes
        // (map_release_uref), so the map is pinned for as long as the pod lives.
        if (sockhashPin.empty()) throw BpfError("EINVAL", "attach", name + ": sockhashPinPath is required");
        if (bpf_obj_pin(m->second, sockhashPin.c_str())) throw BpfError(errno, "pin", sockhashPin);
        st.mapPins.push_back(sockhashPin);
        if (bpf_prog_attach(fd, m->second, type, 0)) throw BpfError(errno, "attach", name + " to local_socks");
        st.attached.push_back({fd, m->second, type});
        target = "map";
      } else if (type == BPF_SK_LOOKUP) {
        if (netnsPath.empty() || pinPath.empty()) throw BpfError("EINVAL", "attach", name + ": netnsPath and linkPinPath are required");
        st.netnsFd = open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
        if (st.netnsFd < 0) throw BpfError(errno, "open netns", netnsPath);
        st.linkFd = bpf_link_create(fd, st.netnsFd, BPF_SK_LOOKUP, nullptr);
        if (st.linkFd < 0) throw BpfError(errno, "attach", name + " to " + netnsPath);
        if (bpf_obj_pin(st.linkFd, pinPath.c_str())) throw BpfError(errno, "pin", pinPath);
        st.pinned = pinPath;
        target = "netns";
      } else {
        if (bpf_prog_attach(fd, st.cgroupFd, type, BPF_F_ALLOW_MULTI)) throw BpfError(errno, "attach", name + " to " + cgroupPath);
        st.attached.push_back({fd, st.cgroupFd, type});
        target = "cgroup";
      }
      bpf_prog_info pi{};
      uint32_t len = sizeof(pi);
      bpf_obj_get_info_by_fd(fd, &pi, &len);
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", name);
      o.Set("id", pi.id);
      o.Set("attachType", AttachTypeName(type));
      o.Set("target", target);
      progsOut.Set(progsOut.Length(), o);
    }
  } catch (const BpfError& e) {
    st.Rollback();
    throw e.ToNapi(env);
  }
  result.Set("programs", progsOut);
  result.Set("maps", mapsOut);
  if (st.linkFd >= 0) {
    bpf_link_info li{};
    uint32_t len = sizeof(li);
    bpf_obj_get_info_by_fd(st.linkFd, &li, &len);
    Napi::Object l = Napi::Object::New(env);
    l.Set("id", li.id);
    l.Set("pin", st.pinned);
    result.Set("link", l);
  } else {
    result.Set("link", env.Null());
  }
  return result;
}

// testRun({ object, rodata, mapEntries, sockmapEntries: [{ map, key, fd }], ctx: Buffer })
// → { retval, ctx: Buffer }: loads one object without attaching anything, fills its maps
// (sockmap values are socket fds), runs its program once with BPF_PROG_TEST_RUN and closes
// it. For unit tests of program types that support test runs (sk_lookup).
Napi::Value TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage =
      "usage: bpf.testRun({ object: string, rodata: Buffer, mapEntries: [{ map, key, value }], "
      "sockmapEntries: [{ map, key: Buffer, fd }], ctx: Buffer })";
  if (info.Length() != 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, usage);
  Napi::Object spec = info[0].As<Napi::Object>();
  if (!spec.Get("object").IsString() || !spec.Get("rodata").IsBuffer() || !spec.Get("mapEntries").IsArray() ||
      !spec.Get("sockmapEntries").IsArray() || !spec.Get("ctx").IsBuffer()) {
    throw Napi::TypeError::New(env, usage);
  }
  std::string path = spec.Get("object").As<Napi::String>();
  auto rodata = spec.Get("rodata").As<Napi::Buffer<uint8_t>>();
  auto ctx = spec.Get("ctx").As<Napi::Buffer<uint8_t>>();
  g_libbpf_log.clear();
  libbpf_set_print(CaptureLibbpfLog);
  LoadState st;
  try {
    bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr);
    if (obj == nullptr) throw BpfError(errno, "open", path + LogTail());
    st.objects.push_back(obj);
    WriteConfig(obj, path, rodata.Data(), rodata.Length());
    int err = bpf_object__load(obj);
    if (err) throw BpfError(-err, "load", path + LogTail());
    auto fdOf = [&](const std::string& name) {
      bpf_map* m = bpf_object__find_map_by_name(obj, name.c_str());
      if (m == nullptr) throw BpfError("ENOENT", "fill map", name + " is not in " + path);
      return bpf_map__fd(m);
    };
    auto entries = spec.Get("mapEntries").As<Napi::Array>();
    for (uint32_t i = 0; i < entries.Length(); i++) {
      Napi::Object e = entries.Get(i).As<Napi::Object>();
      std::string name = e.Get("map").As<Napi::String>();
      auto key = e.Get("key").As<Napi::Buffer<uint8_t>>();
      auto value = e.Get("value").As<Napi::Buffer<uint8_t>>();
      if (bpf_map_update_elem(fdOf(name), key.Data(), value.Data(), BPF_ANY)) throw BpfError(errno, "fill map", name);
    }
    auto socks = spec.Get("sockmapEntries").As<Napi::Array>();
    for (uint32_t i = 0; i < socks.Length(); i++) {
      Napi::Object e = socks.Get(i).As<Napi::Object>();
      std::string name = e.Get("map").As<Napi::String>();
      auto key = e.Get("key").As<Napi::Buffer<uint8_t>>();
      uint64_t fd = e.Get("fd").As<Napi::Number>().Uint32Value();
      if (bpf_map_update_elem(fdOf(name), key.Data(), &fd, BPF_ANY)) throw BpfError(errno, "fill sockmap", name);
    }
    bpf_program* prog = bpf_object__next_program(obj, nullptr);
    if (prog == nullptr) throw BpfError("ENOENT", "test run", path + " has no program");
    std::vector<uint8_t> out(ctx.Length());
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.ctx_in = ctx.Data();
    opts.ctx_size_in = static_cast<uint32_t>(ctx.Length());
    opts.ctx_out = out.data();
    opts.ctx_size_out = static_cast<uint32_t>(out.size());
    if (bpf_prog_test_run_opts(bpf_program__fd(prog), &opts)) throw BpfError(errno, "test run", bpf_program__name(prog));
    Napi::Object r = Napi::Object::New(env);
    r.Set("retval", opts.retval);
    r.Set("ctx", Napi::Buffer<uint8_t>::Copy(env, out.data(), opts.ctx_size_out));
    return r;
  } catch (const BpfError& e) {
    throw e.ToNapi(env);
  }
}

}  // namespace

void InitBpfQuery(Napi::Env env, Napi::Object bpf);  // bpf_query.cc

void InitBpf(Napi::Env env, Napi::Object exports) {
  Napi::Object bpf = Napi::Object::New(env);
  bpf.Set("load", Napi::Function::New(env, Load, "load"));
  bpf.Set("testRun", Napi::Function::New(env, TestRun, "testRun"));
  InitBpfQuery(env, bpf);
  exports.Set("bpf", bpf);
}

}  // namespace weft
