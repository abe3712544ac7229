/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every map and shared type of weft's eBPF programs, in one place. Each program file
 * includes this header; the loader creates each map once (from the first object that
 * declares it) and hands the same fd to every other object (bpf_map__reuse_fd), so the
 * programs share state although they are compiled as separate objects.
 *
 * The layouts below are mirrored byte for byte in pkg/intercept/ebpf/maps.ts; the test
 * pkg/intercept/ebpf/maps.test.ts checks both against the BTF of the built objects. */
#pragma once

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Kept local: the libc/kernel socket headers do not mix with the bpf target. */
#define WEFT_AF_INET 2
#define WEFT_AF_INET6 10
#define WEFT_SOCK_STREAM 1
#define WEFT_IPPROTO_TCP 6
#define WEFT_SOL_IP 0
#define WEFT_SOL_IPV6 41
/* SO_ORIGINAL_DST (linux/netfilter_ipv4.h) and IP6T_SO_ORIGINAL_DST share the number 80. */
#define WEFT_SO_ORIGINAL_DST 80

/* Loads a context field into a register right here: stops clang from merging the loads of
 * two branches into one through a computed context pointer, which the verifier refuses
 * ("dereference of modified ctx ptr"). */
#define WEFT_LOAD(field) ({ __u32 __v = (field); asm volatile("" : "+r"(__v)); __v; })

/* Sizes: one entry per connection in flight for a busy pod (local_socks holds both ends of a
 * connection, so 65536 entries are 32768 short-circuited connections). */
#define WEFT_CONN_ENTRIES 65536
/* pairs holds only hand-overs in flight (between the app end's SYN-ACK and the proxy end's
 * ACK): twice the default accept backlog (net.core.somaxconn 4096), so that even a full
 * accept queue holding ACKs back cannot make the LRU evict a live hand-over. Preallocated
 * (LRU): 8192 entries are about 1 MiB. */
#define WEFT_PAIR_ENTRIES 8192
#define WEFT_PORT_ENTRIES 1024
#define WEFT_CIDR_ENTRIES 1024

/* Runtime configuration, one per object in .rodata: written by the loader between
 * bpf_object__open and load, so the verifier sees constants and no pod needs a rebuild.
 * Ports in host byte order. */
struct weft_config {
	__u32 proxy_uid;
	__u32 proxy_gid;
	__u16 outbound_port;
	__u16 inbound_port;
	/* WEFT_CFG_* bits */
	__u32 flags;
};
#define WEFT_CFG_IPV6 1u            /* connect6 rewrites (else it passes everything) */
#define WEFT_CFG_INCLUDE_ALL 2u     /* no include list: every destination is intercepted */
#define WEFT_CFG_SK_MSG 4u          /* sk_msg is attached: pair sockets in local_socks */

/* The one .rodata variable of every object; its defaults are the documented ones. */
const volatile struct weft_config weft_cfg = {
	.proxy_uid = 1337,
	.proxy_gid = 1337,
	.outbound_port = 15001,
	.inbound_port = 15006,
	.flags = WEFT_CFG_INCLUDE_ALL,
};

/* An IP endpoint. IPv4 is kept IPv4-mapped (::ffff:a.b.c.d) so that a dual-stack app
 * socket and the proxy's IPv4 socket produce the same keys. Port in host order. */
struct weft_addr {
	__u32 ip[4]; /* network byte order */
	__u16 port;
	__u16 family; /* WEFT_AF_INET or WEFT_AF_INET6: the family the app asked for */
};

/* A TCP connection as one end sees it. */
struct weft_tuple {
	__u32 local_ip[4];
	__u32 remote_ip[4];
	__u16 local_port;
	__u16 remote_port;
};

/* Port exclusions (key of excluded_ports). */
struct weft_port_key {
	__u16 port;
	__u8 dir; /* WEFT_DIR_* */
	__u8 pad;
};
#define WEFT_DIR_INBOUND 0
#define WEFT_DIR_OUTBOUND 1

/* LPM trie key: IPv4 prefixes are stored IPv4-mapped with prefixlen + 96. */
struct weft_lpm_key {
	__u32 prefixlen;
	__u32 ip[4];
};

/* Indices of the counters map. */
enum weft_counter {
	WEFT_CNT_REDIRECTED = 0,     /* outbound connects rewritten to the proxy */
	WEFT_CNT_ORIG_FULL = 1,      /* no orig_dst storage (optmem): connection left un-intercepted (fail open) */
	WEFT_CNT_PAIR_FULL = 2,      /* pairs insert failed: the proxy will find no original destination */
	WEFT_CNT_SOCKHASH_FULL = 3,  /* local_socks full: bytes take the TCP path (no sk_msg) */
	WEFT_CNT_STEERED = 4,        /* inbound connections assigned to the proxy by sk_lookup */
	WEFT_CNT_NO_LISTENER = 5,    /* inbound with no proxy listener (proxy down): dropped (fail closed) */
	WEFT_CNT_ORIG_ANSWERED = 6,  /* SO_ORIGINAL_DST answered from pairs */
	WEFT_CNT_MSG_REDIRECTED = 7, /* sk_msg sends redirected to the local peer */
	WEFT_CNT_ORIG_UNKNOWN = 8,   /* the proxy asked SO_ORIGINAL_DST of a socket weft had none for */
	WEFT_CNT_MAX = 9,
};

/* Original destination of an app socket whose connect was rewritten, in that socket's own
 * storage: written by connect4/6, read (and deleted) by sockops when the app's end is
 * established. It dies with the socket, so a connect that fails half-way (EADDRNOTAVAIL,
 * a later program's EPERM, a close before the SYN) leaves nothing behind. No size: "full"
 * is the socket's optmem limit (net.core.optmem_max); then connect4/6 leave the
 * connection un-intercepted (fail open, counter origDstFull). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct weft_addr);
} orig_dst SEC(".maps");

/* Hand-over of the original destination from the app's end to the proxy's accepted end,
 * keyed by the tuple as the proxy's end sees it (local = the proxy's outbound listener
 * address, remote = the app's address). Written on the app's ACTIVE_ESTABLISHED, moved into
 * proxy_orig on the proxy end's PASSIVE_ESTABLISHED, which the app's ACK (sent after the
 * first callback) triggers: an entry lives for microseconds. LRU, so that an entry whose
 * proxy end never came (its ACK dropped on a full accept queue) is evicted instead of
 * filling the map: full never fails an insert, it evicts the least recently used entry. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WEFT_PAIR_ENTRIES);
	__type(key, struct weft_tuple);
	__type(value, struct weft_addr);
} pairs SEC(".maps");

/* Original destination of the proxy's accepted end of a redirected connection, in that
 * socket's storage; read by getsockopt(SO_ORIGINAL_DST), gone when the socket closes. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct weft_addr);
} proxy_orig SEC(".maps");

/* Established app<->proxy sockets keyed by their own tuple, for sk_msg redirection to the
 * peer (the swapped tuple). Sockets leave it by themselves when they close. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, WEFT_CONN_ENTRIES);
	__type(key, struct weft_tuple);
	__type(value, __u64);
} local_socks SEC(".maps");

/* The proxy's inbound listener(s): key 0 = IPv4 (or dual-stack), key 1 = IPv6; filled by
 * sockops on TCP_LISTEN_CB, read by sk_lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} listeners SEC(".maps");

/* Ports never intercepted, per direction; filled by the loader before attach. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEFT_PORT_ENTRIES);
	__type(key, struct weft_port_key);
	__type(value, __u8);
} excluded_ports SEC(".maps");

/* Outbound destinations never intercepted; filled by the loader before attach. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, WEFT_CIDR_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct weft_lpm_key);
	__type(value, __u8);
} excluded_cidrs SEC(".maps");

/* When WEFT_CFG_INCLUDE_ALL is unset: the only outbound destinations intercepted. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, WEFT_CIDR_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct weft_lpm_key);
	__type(value, __u8);
} included_cidrs SEC(".maps");

/* Per-CPU event counters (enum weft_counter): redirections, and each fail-open/closed event. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WEFT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void weft_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline void weft_map_v4(__u32 out[4], __u32 ip4)
{
	out[0] = 0;
	out[1] = 0;
	out[2] = bpf_htonl(0x0000ffff);
	out[3] = ip4;
}

static __always_inline int weft_is_mapped(const __u32 ip[4])
{
	return ip[0] == 0 && ip[1] == 0 && ip[2] == bpf_htonl(0x0000ffff);
}

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
static __always_inline int weft_is_loopback(const __u32 ip[4])
{
	if (weft_is_mapped(ip))
		return (bpf_ntohl(ip[3]) >> 24) == 127;
	return ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] == bpf_htonl(1);
}

static __always_inline int weft_port_excluded(__u16 port, __u8 dir)
{
	struct weft_port_key k = { .port = port, .dir = dir };

	return bpf_map_lookup_elem(&excluded_ports, &k) != NULL;
}

static __always_inline int weft_is_proxy(void)
{
	__u64 ug = bpf_get_current_uid_gid();

	return (__u32)ug == weft_cfg.proxy_uid || (__u32)(ug >> 32) == weft_cfg.proxy_gid;
}

/* connect4/6: keep the original destination in the connecting socket's storage. Fails open
 * (the caller leaves the connect alone) when no storage can be had. */
static __always_inline int weft_remember_orig(struct bpf_sock_addr *ctx, const struct weft_addr *orig)
{
	struct weft_addr *slot = bpf_sk_storage_get(&orig_dst, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (!slot) {
		weft_count(WEFT_CNT_ORIG_FULL);
		return -1;
	}
	*slot = *orig;
	return 0;
}

/* Whether an outbound destination (IPv4-mapped or IPv6) should go through the proxy. */
static __always_inline int weft_should_intercept(const __u32 ip[4], __u16 port)
{
	struct weft_lpm_key k = { .prefixlen = 128 };

	if (weft_is_loopback(ip) || weft_port_excluded(port, WEFT_DIR_OUTBOUND))
		return 0;
	k.ip[0] = ip[0];
	k.ip[1] = ip[1];
	k.ip[2] = ip[2];
	k.ip[3] = ip[3];
	if (bpf_map_lookup_elem(&excluded_cidrs, &k))
		return 0;
	if (!(weft_cfg.flags & WEFT_CFG_INCLUDE_ALL) && !bpf_map_lookup_elem(&included_cidrs, &k))
		return 0;
	return 1;
}
